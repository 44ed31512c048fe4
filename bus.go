package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/servicebus"
)

// withServiceBus adds scheduled expiry (JIT_SERVICEBUS_NAMESPACE) and
// notifications (JIT_NOTIFICATIONS_TOPIC) to the broker options. It returns
// a close function.
func withServiceBus(s config.Settings, cred azcore.TokenCredential, opts *broker.Options) (func(), error) {
	if s.ServiceBusNS == "" {
		return func() {}, nil
	}
	client, err := azservicebus.NewClient(s.ServiceBusNS, cred, nil)
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", config.EnvServiceBusNS, err)
	}
	queue, err := client.NewSender(s.RequestsQueue, nil)
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", config.EnvRequestsQueue, err)
	}
	opts.Scheduler = servicebus.NewScheduler(queue, nil)
	closers := []func(context.Context) error{queue.Close}
	if s.NotificationsTopic != "" {
		topic, err := client.NewSender(s.NotificationsTopic, nil)
		if err != nil {
			return nil, fmt.Errorf("setting %s: %w", config.EnvNotifyTopic, err)
		}
		opts.Publisher = servicebus.NewPublisher(topic, nil)
		opts.ExpiringLead = s.ExpiringLead
		closers = append(closers, topic.Close)
	}
	closers = append(closers, client.Close)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, c := range closers {
			_ = c(ctx)
		}
	}, nil
}

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
