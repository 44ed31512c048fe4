package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// fakeSender records what would reach Service Bus.
type fakeSender struct {
	sent      []*azservicebus.Message
	scheduled []*azservicebus.Message
	at        []time.Time
	cancelled []int64
	err       error
	seq       int64
}

func (f *fakeSender) SendMessage(_ context.Context, m *azservicebus.Message, _ *azservicebus.SendMessageOptions) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeSender) ScheduleMessages(_ context.Context, ms []*azservicebus.Message, at time.Time, _ *azservicebus.ScheduleMessagesOptions) ([]int64, error) {
	if f.err != nil {
		return nil, f.err
	}
	var seqs []int64
	for _, m := range ms {
		f.seq++
		f.scheduled = append(f.scheduled, m)
		f.at = append(f.at, at)
		seqs = append(seqs, f.seq)
	}
	return seqs, nil
}

func (f *fakeSender) CancelScheduledMessages(_ context.Context, seqs []int64, _ *azservicebus.CancelScheduledMessagesOptions) error {
	if f.err != nil {
		return f.err
	}
	f.cancelled = append(f.cancelled, seqs...)
	return nil
}

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestScheduleExpireSendsAValidExpireEvent(t *testing.T) {
	f := &fakeSender{}
	s := NewScheduler(f, func() time.Time { return now })
	at := now.Add(time.Hour)
	seq, msgID, err := s.ScheduleExpire(context.Background(), "req-1", at)
	if err != nil || seq != 1 || len(f.scheduled) != 1 || !f.at[0].Equal(at) {
		t.Fatalf("seq %d err %v scheduled %d", seq, err, len(f.scheduled))
	}
	ev, err := access.DecodeEvent(f.scheduled[0].Body)
	if err != nil {
		t.Fatalf("the handler would reject the scheduled event: %v", err)
	}
	if ev.Type != access.TypeExpire || ev.RequestID != "req-1" || *f.scheduled[0].MessageID != ev.ID || msgID != ev.ID {
		t.Fatalf("%+v, message id %q returned %q", ev, *f.scheduled[0].MessageID, msgID)
	}
	if err := s.CancelExpire(context.Background(), seq); err != nil || len(f.cancelled) != 1 || f.cancelled[0] != seq {
		t.Fatalf("cancel: %v %v", err, f.cancelled)
	}
}

// The expire message's id cannot be guessed from what senders can read (the
// request id and endsAt, in the read API): a sender who sent it first would
// have the real message dropped by duplicate detection, and its CloudEvent
// id taken as already seen (docs/design.md, real directory rule 4). Each scheduling draws a new
// random id, even for the same request and time.
func TestScheduleExpireIDCannotBeGuessed(t *testing.T) {
	f := &fakeSender{}
	s := NewScheduler(f, func() time.Time { return now })
	const req = "req-1"
	at := now.Add(time.Hour).Add(123456789 * time.Nanosecond)
	seen := map[string]bool{}
	for range 50 {
		if _, _, err := s.ScheduleExpire(context.Background(), req, at); err != nil {
			t.Fatal(err)
		}
	}
	// What a sender knows of the grant, in every form it could take.
	known := []string{req, at.UTC().Format("20060102T150405"), at.UTC().Format("20060102"), at.UTC().Format(time.RFC3339),
		fmt.Sprint(at.Unix()), fmt.Sprint(at.UnixNano()), "expire-" + req + "-" + at.UTC().Format("20060102T150405.000000000")}
	for _, m := range f.scheduled {
		id := *m.MessageID
		ev, err := access.DecodeEvent(m.Body)
		if err != nil || ev.ID != id {
			t.Fatalf("CloudEvent id %q, MessageId %q (%v)", ev.ID, id, err)
		}
		if seen[id] {
			t.Fatalf("message id %q drawn twice for the same request and time", id)
		}
		seen[id] = true
		for _, k := range known {
			if strings.Contains(id, k) {
				t.Fatalf("message id %q contains %q", id, k)
			}
		}
		// 128 bits at least: 26 base32 characters.
		if len(id) < 26 || len(id) > 128 {
			t.Fatalf("message id %q: %d characters", id, len(id))
		}
	}
}

func TestErrorsAreTranslated(t *testing.T) {
	f := &fakeSender{err: &azservicebus.Error{Code: azservicebus.CodeConnectionLost}}
	s := NewScheduler(f, nil)
	if _, _, err := s.ScheduleExpire(context.Background(), "r", now); !fault.Transient(err) {
		t.Fatalf("connection lost: %v", err)
	}
	f.err = &azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}
	if err := NewPublisher(f, nil).Publish(context.Background(), access.Notice{ID: "n", Type: access.NoticeActivated}, &access.Request{ID: "r"}); !fault.Permanent(err) {
		t.Fatalf("unauthorized: %v", err)
	}
	f.err = &azservicebus.Error{Code: azservicebus.CodeNotFound}
	if err := s.CancelExpire(context.Background(), 7); err != nil {
		t.Fatalf("cancel of a delivered message: %v", err)
	}
	f.err = errors.New("boom")
	if err := s.CancelExpire(context.Background(), 7); !fault.Transient(err) {
		t.Fatalf("other: %v", err)
	}
}

func TestPublishNotice(t *testing.T) {
	f := &fakeSender{}
	p := NewPublisher(f, nil)
	r := &access.Request{ID: "req-9", Source: access.SourceEvents, State: access.Active, Profile: "aks-admin",
		Requester: "u1", Justification: "secret justification", Duration: access.Duration(time.Hour),
		ActivatedAt: now, EndsAt: now.Add(time.Hour), Approvals: []access.Approval{{Approver: "a1"}}}
	n := access.Notice{ID: "active-4", Type: access.NoticeActivated, At: now}
	if err := p.Publish(context.Background(), n, r); err != nil {
		t.Fatal(err)
	}
	m := f.sent[0]
	var ev map[string]any
	if err := json.Unmarshal(m.Body, &ev); err != nil {
		t.Fatal(err)
	}
	data := ev["data"].(map[string]any)
	if ev["type"] != access.NoticeActivated || ev["id"] != "req-9/active-4" || *m.MessageID != "req-9/active-4" ||
		data["endsAt"] != "2026-11-23T11:00:00Z" || data["duration"] != "PT1H" || m.ApplicationProperties["profile"] != "aks-admin" {
		t.Fatalf("%v", ev)
	}
	if _, leaked := data["justification"]; leaked {
		t.Fatal("free text from the sender must not be broadcast")
	}
}
