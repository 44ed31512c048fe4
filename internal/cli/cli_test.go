package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/jitaccess/jitaccess/internal/access"
)

// The real azservicebus sender satisfies the interface the CLI sends through.
var _ ServiceBusSender = (*azservicebus.Sender)(nil)

type sandbox struct {
	*httptest.Server
	bodies [][]byte
	paths  []string
	status int
}

func newSandbox(t *testing.T) *sandbox {
	s := &sandbox{status: http.StatusAccepted}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.bodies = append(s.bodies, b)
		s.paths = append(s.paths, r.URL.Path)
		w.WriteHeader(s.status)
	}))
	t.Cleanup(s.Close)
	return s
}

// cet is the "local" zone of the tests' tables.
var cet = time.FixedZone("CET", 3600)

func run(t *testing.T, fn func(context.Context, []string, Env) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
		Now: func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) },
		Loc: cet}
	code := fn(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestSendRequestedToSandbox(t *testing.T) {
	sb := newSandbox(t)
	code, out, errs := run(t, Send, "requested", "--sandbox", sb.URL, "--requester", "n01@contoso.com",
		"--profile", "aks-admin", "--duration", "PT2M", "--justification", "incident 42")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(sb.bodies) != 1 || sb.paths[0] != "/_devhost/queues/access-requests/messages" {
		t.Fatalf("sandbox got %v", sb.paths)
	}
	ev, err := access.DecodeEvent(sb.bodies[0])
	if err != nil {
		t.Fatalf("sent event does not decode: %v", err)
	}
	var printed map[string]string
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if ev.Type != access.TypeRequested || ev.Requester != "n01@contoso.com" || ev.Duration != "PT2M" ||
		printed["requestId"] != ev.RequestID || printed["id"] != ev.ID || !strings.HasPrefix(ev.RequestID, "req-") {
		t.Fatalf("event %+v printed %v", ev, printed)
	}
}

func TestSendRefusesInvalidEventsBeforeSending(t *testing.T) {
	sb := newSandbox(t)
	cases := [][]string{
		{"requested", "--profile", "aks-admin"},                                           // no requester
		{"requested", "--requester", "n01", "--profile", "aks-admin", "--duration", "1h"}, // bad duration
		{"requested", "--requester", "two words", "--profile", "aks-admin"},
		{"approved", "--approver", "p01@contoso.com"},            // no request id
		{"approved", "--request-id", "r1"},                       // no approver
		{"approved", "--request-id", "r/1", "--approver", "p01"}, // bad id
		{"cancelled", "--request-id", "r1", "--approver", "n01"}, // wrong flag
		{"bogus"},
		{"approved", "--request-id", "r1", "--approver", "p01", "--sandbox", sb.URL, "--namespace", "x.servicebus.windows.net"},
		{"approved", "--nope"},
	}
	for _, args := range cases {
		code, _, errs := run(t, Send, append(args, "--sandbox", sb.URL)...)
		if code != ExitUsage || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	if len(sb.bodies) != 0 {
		t.Fatalf("%d invalid events were sent", len(sb.bodies))
	}
}

func TestSendFailureExitsOne(t *testing.T) {
	sb := newSandbox(t)
	sb.status = http.StatusInternalServerError
	code, _, errs := run(t, Send, "approved", "--request-id", "r1", "--approver", "p01@contoso.com", "--sandbox", sb.URL)
	if code != ExitFailed || !strings.Contains(errs, "not sent") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, _, _ = run(t, Send, "approved", "--request-id", "r1", "--approver", "p01@contoso.com", "--sandbox", "http://127.0.0.1:1")
	if code != ExitFailed {
		t.Fatalf("unreachable sandbox: exit %d", code)
	}
}

func TestSendPrintAndHelp(t *testing.T) {
	code, out, _ := run(t, Send, "revoked", "--request-id", "r1", "--by", "p01@contoso.com", "--reason", "done", "--print")
	if code != ExitOK || !strings.Contains(out, `"jit.access.revoked"`) {
		t.Fatalf("print: %d %s", code, out)
	}
	if code, out, _ := run(t, Send, "--help"); code != ExitOK || !strings.Contains(out, "usage: jitaccess send") {
		t.Fatalf("help: %d %s", code, out)
	}
	if code, _, _ := run(t, Send); code != ExitUsage {
		t.Fatalf("no args: %d", code)
	}
}
