package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// flaky fails its first n calls with err, then succeeds.
type flaky struct {
	n     int64
	err   error
	calls atomic.Int64
}

func (f *flaky) HandleEvent(context.Context, []byte) error {
	if f.calls.Add(1) <= f.n {
		return f.err
	}
	return nil
}

func (f *flaky) RejectDelivery(ctx context.Context, _, _ string) error {
	return f.HandleEvent(ctx, nil)
}

func deliveryPayload(count int) []byte {
	return devhost.ServiceBusPayload("AccessRequests", "message", "ns.servicebus.windows.net",
		devhost.Message{MessageID: "m-1", SequenceNumber: 1, DeliveryCount: count,
			Body:         []byte(`{"specversion":"1.0","id":"e-1","source":"/t","type":"jit.access.requested","data":{}}`),
			EnqueuedTime: time.Now()}, time.Now())
}

func TestRedeliveryPatience(t *testing.T) {
	transient := fault.Wrap(fault.ErrTransient, "store", errors.New("connection refused"))
	cases := []struct {
		name      string
		patience  time.Duration
		delivery  int
		failures  int64
		err       error
		status    int
		wantCalls int64 // exact; 0: more than one
	}{
		{"first delivery answers at once", 800 * time.Millisecond, 1, 3, transient, 500, 1},
		{"off", 0, 5, 3, transient, 500, 1},
		{"redelivery waits out a short outage", 800 * time.Millisecond, 2, 3, transient, 200, 4},
		{"outage longer than the patience", 400 * time.Millisecond, 3, 1 << 30, transient, 500, 0},
		{"not transient: no retry", 800 * time.Millisecond, 2, 3, errors.New("bug"), 500, 1},
		{"success needs no patience", 800 * time.Millisecond, 2, 0, nil, 200, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &flaky{n: tc.failures, err: tc.err}
			h, logs := newTestServer(t, Deps{Events: p, RedeliveryPatience: tc.patience})
			start := time.Now()
			assertAnswer(t, post(h, "/AccessRequests", deliveryPayload(tc.delivery)), tc.status)
			took := time.Since(start)
			calls := p.calls.Load()
			if tc.wantCalls > 0 && calls != tc.wantCalls {
				t.Fatalf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantCalls == 0 && calls < 3 {
				t.Fatalf("%d calls: the patience was not used", calls)
			}
			if tc.patience > 0 && took > tc.patience+time.Second {
				t.Fatalf("took %v, over the patience %v", took, tc.patience)
			}
			if calls > 1 && !strings.Contains(logs.String(), fmt.Sprintf(`"patienceTries":%d`, calls)) {
				t.Fatalf("log lacks patienceTries=%d: %s", calls, logs)
			}
		})
	}
}

func TestRedeliveryPatienceEndsWithTheInvocation(t *testing.T) {
	p := &flaky{n: 1 << 30, err: fault.Wrap(fault.ErrTransient, "graph", errors.New("503"))}
	h, _ := newTestServer(t, Deps{Events: p, RedeliveryPatience: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rec := postCtx(ctx, h, "/AccessRequests", deliveryPayload(4))
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("kept retrying for %v after the host gave up", took)
	}
}

func postCtx(ctx context.Context, h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
