// Package servicebus is the Service Bus adapter: it schedules the app's own
// jit.access.expire messages on the requests queue (so a grant ends on time
// to the second, with the sweep as the backstop) and publishes outcome
// notifications as CloudEvents to a topic. The azservicebus sender sits
// behind the small Sender interface; tests use a fake, and a compile-time
// check proves *azservicebus.Sender satisfies it.
package servicebus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Sender is the part of *azservicebus.Sender this package uses.
type Sender interface {
	SendMessage(ctx context.Context, m *azservicebus.Message, o *azservicebus.SendMessageOptions) error
	ScheduleMessages(ctx context.Context, ms []*azservicebus.Message, at time.Time, o *azservicebus.ScheduleMessagesOptions) ([]int64, error)
	CancelScheduledMessages(ctx context.Context, seqs []int64, o *azservicebus.CancelScheduledMessagesOptions) error
}

var _ Sender = (*azservicebus.Sender)(nil)

// Source is the CloudEvent source of everything jitaccess sends.
const Source = "/jitaccess"

// Scheduler schedules and cancels expire messages on the requests queue.
type Scheduler struct {
	s   Sender
	now func() time.Time
}

// NewScheduler wraps a sender for the requests queue.
func NewScheduler(s Sender, now func() time.Time) *Scheduler {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	return &Scheduler{s: s, now: now}
}

// ScheduleExpire schedules a jit.access.expire event for requestID at at and
// returns its sequence number and its message id. The message id, which is
// also the CloudEvent id, is new and random at each call (NewMessageID):
// senders can read the request id and endsAt, and an id built from them
// would let a sender pre-empt the message (Service Bus duplicate detection
// drops a later message with a MessageId it logged within the window, and
// the broker ignores a CloudEvent id it has seen). A repeated schedule, after
// an answer that was lost, adds a second expire message: a no-op once the
// grant has ended.
func (s *Scheduler) ScheduleExpire(ctx context.Context, requestID string, at time.Time) (int64, string, error) {
	id := NewMessageID()
	body, err := cloudEvent(id, access.TypeExpire, s.now(), map[string]any{"requestId": requestID})
	if err != nil {
		return 0, "", err
	}
	ct := "application/cloudevents+json; charset=utf-8"
	seqs, err := s.s.ScheduleMessages(ctx, []*azservicebus.Message{{Body: body, MessageID: &id, ContentType: &ct}}, at, nil)
	if err != nil {
		return 0, "", translate("schedule expire", err)
	}
	if len(seqs) != 1 {
		return 0, "", fault.Wrap(fault.ErrTransient, "schedule expire", fmt.Errorf("got %d sequence numbers", len(seqs)))
	}
	return seqs[0], id, nil
}

// NewMessageID returns a new id for a message jitaccess schedules for itself
// (its MessageId and CloudEvent id): 128 random bits from crypto/rand as 26
// base32 characters, with nothing of the request in it, so that no sender
// can guess it (docs/design.md, real directory rule 4).
func NewMessageID() string { return rand.Text() }

// CancelExpire cancels a scheduled expire message; one already delivered or
// cancelled is not an error worth retrying.
func (s *Scheduler) CancelExpire(ctx context.Context, seq int64) error {
	if err := s.s.CancelScheduledMessages(ctx, []int64{seq}, nil); err != nil {
		var sbErr *azservicebus.Error
		if errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeNotFound {
			return nil
		}
		return translate("cancel expire", err)
	}
	return nil
}

// Publisher sends outcome notifications to the notifications topic.
type Publisher struct {
	s   Sender
	now func() time.Time
}

// NewPublisher wraps a sender for the notifications topic.
func NewPublisher(s Sender, now func() time.Time) *Publisher {
	if now == nil {
		now = func() time.Time { return time.Now().UTC() }
	}
	return &Publisher{s: s, now: now}
}

// Publish sends one notification. Its id is stable (request id + notice
// id), so a retry from the sweep is dropped by duplicate detection and by
// subscribers that dedupe on the CloudEvent id.
func (p *Publisher) Publish(ctx context.Context, n access.Notice, r *access.Request) error {
	id := r.ID + "/" + n.ID
	body, err := cloudEvent(id, n.Type, n.At, NoticeData(n, r))
	if err != nil {
		return err
	}
	ct := "application/cloudevents+json; charset=utf-8"
	subject := n.Type
	msg := &azservicebus.Message{Body: body, MessageID: &id, ContentType: &ct, Subject: &subject,
		ApplicationProperties: map[string]any{"type": n.Type, "profile": r.Profile, "state": string(r.State)}}
	if err := p.s.SendMessage(ctx, msg, nil); err != nil {
		return translate("publish "+n.Type, err)
	}
	return nil
}

// NoticeData is the data of an outcome notification: enough to act on
// (who, what, until when, why), never the sender's free text.
func NoticeData(n access.Notice, r *access.Request) map[string]any {
	d := map[string]any{
		"requestId": r.ID, "source": string(r.Source), "state": string(r.State), "profile": r.Profile,
		"groupId": r.GroupID, "requester": r.Requester, "requesterUpn": r.RequesterUPN,
	}
	if r.Duration > 0 {
		d["duration"] = r.Duration.String()
	}
	for k, t := range map[string]time.Time{"requestedAt": r.RequestedAt, "activatedAt": r.ActivatedAt, "endsAt": r.EndsAt, "endedAt": r.EndedAt} {
		if !t.IsZero() {
			d[k] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	if n.Reason != "" {
		d["reason"] = n.Reason
	}
	var approvers []string
	for _, a := range r.Approvals {
		approvers = append(approvers, a.Approver)
	}
	if len(approvers) > 0 {
		d["approvers"] = approvers
	}
	return d
}

func cloudEvent(id, typ string, at time.Time, data map[string]any) ([]byte, error) {
	if id == "" {
		id = uuid.NewString()
	}
	return json.Marshal(map[string]any{
		"specversion": "1.0", "id": id, "source": Source, "type": typ,
		"time": at.UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data,
	})
}

// translate maps Service Bus errors to fault kinds, once.
func translate(op string, err error) error {
	var sbErr *azservicebus.Error
	if errors.As(err, &sbErr) {
		switch sbErr.Code {
		case azservicebus.CodeUnauthorizedAccess, azservicebus.CodeNotFound:
			return fault.Wrap(fault.ErrPermanent, op, err)
		}
		return fault.Wrap(fault.ErrTransient, op, err)
	}
	var respErr *azcore.ResponseError
	if errors.As(err, &respErr) && (respErr.StatusCode == 401 || respErr.StatusCode == 403) {
		return fault.Wrap(fault.ErrPermanent, op, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Wrap(fault.ErrTransient, op, err)
	}
	return fault.Wrap(fault.ErrTransient, op, err)
}
