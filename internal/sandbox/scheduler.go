package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/servicebus"
)

// devhostScheduler schedules expiry messages on the sandbox's queue, as Service
// Bus would in Azure, with a random message id (servicebus.NewMessageID).
type devhostScheduler struct{ host func() *devhost.Host }

func (d devhostScheduler) ScheduleExpire(_ context.Context, requestID string, at time.Time) (int64, string, error) {
	h := d.host()
	if h == nil {
		return 0, "", fmt.Errorf("sandbox host not started")
	}
	id := servicebus.NewMessageID()
	body, err := servicebusEvent(id, requestID)
	if err != nil {
		return 0, "", err
	}
	return h.Schedule(body, at), id, nil
}

func (d devhostScheduler) CancelExpire(_ context.Context, seq int64) error {
	if h := d.host(); h != nil {
		h.CancelScheduled(seq)
	}
	return nil
}

func servicebusEvent(id, requestID string) ([]byte, error) {
	return cli.BuildEvent(id, access.TypeExpire, servicebus.Source, time.Now(), map[string]string{"requestId": requestID})
}

// logPublisher shows the sandbox's outcome notifications in its log, as a
// subscriber of the notifications topic would receive them.
type logPublisher struct{ log *slog.Logger }

func (p logPublisher) Publish(ctx context.Context, n access.Notice, r *access.Request) error {
	p.log.InfoContext(ctx, "notification (sandbox topic)", "type", n.Type, "requestId", r.ID, "state", string(r.State))
	return nil
}
