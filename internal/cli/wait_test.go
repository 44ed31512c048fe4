package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/api"
)

// The handler's part, played by the fake: what each event records.
func handlerLike(d *deployment, ev access.Event) {
	r := d.requests[ev.RequestID]
	switch ev.Type {
	case access.TypeRequested:
		if ev.Profile != "aks-admin" {
			rej := &api.Request{ID: ev.RequestID, State: "rejected", RequesterUPN: ev.Requester, Profile: ev.Profile,
				Reason: `unknown profile "` + ev.Profile + `"`, EndedAt: t0}
			rej.History = []api.HistoryEntry{entry("rejected", ev.Requester, rej.Reason)}
			d.put(rej)
			return
		}
		d.put(pending(ev.RequestID, ev.Requester))
	case access.TypeApproved:
		if r == nil {
			return // parked: not visible
		}
		if strings.EqualFold(ev.Approver, r.RequesterUPN) {
			r.History = append(r.History, entry("refused", r.RequesterUPN, "approved: requesters cannot approve or deny their own request"))
			return
		}
		for _, a := range r.Approvals {
			if strings.EqualFold(a.ApproverUPN, ev.Approver) {
				r.History = append(r.History, entry("refused", a.ApproverUPN, "approved: this approver has already approved; another approver is required"))
				return
			}
		}
		r.Approvals = append(r.Approvals, api.Approval{Approver: "5e5e0000-0000-4000-8000-000000000002", ApproverUPN: ev.Approver, At: t0})
		r.History = append(r.History, entry("approved", ev.Approver, ev.Comment), entry("activated", "jitaccess", ""))
		r.State, r.ActivatedAt, r.EndsAt, r.ApprovalDeadline = "activating", t0, t0.Add(time.Hour), time.Time{}
	}
}

// settle moves an activating request on after a few reads.
func settle(after int, to string) func(d *deployment, id string) {
	return func(d *deployment, id string) {
		r := d.requests[id]
		if r == nil || r.State != "activating" || d.reads < after {
			return
		}
		if to == "failed" {
			r.State, r.Reason, r.EndedAt = "failed", "Graph refused the membership: 403 Authorization_RequestDenied", t0
			r.History = append(r.History, entry("failed", "jitaccess", r.Reason))
			return
		}
		r.State = to
		r.History = append(r.History, entry("membership-added", "jitaccess", ""))
	}
}

func TestSendWaitOutcomes(t *testing.T) {
	d := newDeployment(t)
	d.onEvent = handlerLike

	// requested → pending: applied, 0.
	code, out, errs := run(t, Send, "requested", "--wait", "--sandbox", d.URL, "--request-id", "r1",
		"--requester", "n01@contoso.com", "--profile", "aks-admin", "--justification", "incident 42")
	if code != ExitOK || out != "applied: request r1 is pending, approval deadline 2026-11-24 11:00:00 CET\n" || errs != "" {
		t.Fatalf("requested: exit %d, out %q, err %q", code, out, errs)
	}

	// approved → activating → active: it waits for the membership.
	d.onRead = settle(d.reads+4, "active")
	code, out, errs = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--request-id", "r1", "--approver", "p01@contoso.com")
	if code != ExitOK || out != "applied: request r1 is active until 2026-11-23 12:00:00 CET\n" {
		t.Fatalf("approved: exit %d, out %q, err %q", code, out, errs)
	}
	code, out, _ = run(t, Send, "requested", "--wait", "--utc", "--sandbox", d.URL, "--request-id", "r7",
		"--requester", "n01@contoso.com", "--profile", "aks-admin", "--justification", "incident 43")
	if code != ExitOK || out != "applied: request r7 is pending, approval deadline 2026-11-24 10:00:00 UTC\n" {
		t.Fatalf("--utc: exit %d, out %q", code, out)
	}

	// The same approver again: refused, 5 — the earlier "approved" entry by
	// p01 (before this event was sent) does not count.
	code, out, _ = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--request-id", "r1", "--approver", "p01@contoso.com")
	if code != ExitRefused || out != "refused: approved: this approver has already approved; another approver is required; request r1 is active\n" {
		t.Fatalf("second approval: exit %d, out %q", code, out)
	}

	// Self-approval: refused, 5, the reason printed.
	d.put(pending("r2", "a01@contoso.com"))
	code, out, _ = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--request-id", "r2", "--approver", "A01@contoso.com")
	if code != ExitRefused || !strings.Contains(out, "requesters cannot approve or deny their own request") || !strings.HasPrefix(out, "refused: ") {
		t.Fatalf("self-approval: exit %d, out %q", code, out)
	}

	// Unknown profile: rejected, 4.
	code, out, _ = run(t, Send, "requested", "--wait", "--sandbox", d.URL, "--request-id", "r3",
		"--requester", "n01@contoso.com", "--profile", "nope")
	if code != ExitRejected || out != "rejected: unknown profile \"nope\"; request r3 is rejected\n" {
		t.Fatalf("unknown profile: exit %d, out %q", code, out)
	}

	// The grant fails: 6 with the reason.
	d.put(pending("r4", "n01@contoso.com"))
	d.onRead = settle(d.reads+2, "failed")
	code, out, _ = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--request-id", "r4", "--approver", "p01@contoso.com")
	if code != ExitRequestFailed || out != "failed: request r4 failed: Graph refused the membership: 403 Authorization_RequestDenied\n" {
		t.Fatalf("failed grant: exit %d, out %q", code, out)
	}

	// No request (an approval is held for it): timeout, 7.
	d.onRead = nil
	start := time.Now()
	code, out, _ = run(t, Send, "approved", "--wait", "--timeout", "600ms", "--sandbox", d.URL, "--request-id", "r5", "--approver", "p01@contoso.com")
	if code != ExitTimeout || !strings.HasPrefix(out, "timeout: request r5 is not visible after 600ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("held approval: exit %d, out %q", code, out)
	}

	// Stuck activating: timeout, 7, saying it was applied.
	d.put(pending("r6", "n01@contoso.com"))
	code, out, _ = run(t, Send, "approved", "--wait", "--timeout", "PT0.5S", "--sandbox", d.URL, "--request-id", "r6", "--approver", "p01@contoso.com")
	if code != ExitTimeout || !strings.Contains(out, "was applied (approved), but request r6 is still activating") {
		t.Fatalf("stuck activating: exit %d, out %q", code, out)
	}
}

// A concurrent approval by someone else is not taken for this event's.
func TestSendWaitIgnoresOthersEntries(t *testing.T) {
	d := newDeployment(t)
	d.put(pending("r1", "n01@contoso.com"))
	d.onEvent = func(d *deployment, ev access.Event) {
		r := d.requests["r1"]
		r.History = append(r.History, entry("approved", "p02@contoso.com", "someone else"))
	}
	d.onRead = func(d *deployment, id string) {
		r := d.requests["r1"]
		if d.reads == 4 {
			r.History = append(r.History, entry("refused", "p01@contoso.com", "approved: request is active"))
		}
	}
	code, out, _ := run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--request-id", "r1", "--approver", "p01@contoso.com")
	if code != ExitRefused || !strings.Contains(out, "approved: request is active") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

func TestFindEffectActors(t *testing.T) {
	r := &api.Request{ID: "r1", Requester: "5e5e0000-0000-4000-8000-000000000001", RequesterUPN: "n01@contoso.com",
		Approvals: []api.Approval{{Approver: "5e5e0000-0000-4000-8000-000000000002", ApproverUPN: "p01@contoso.com"}},
		History: []api.HistoryEntry{
			entry("requested", "n01@contoso.com", ""),
			entry("approved", "p01@contoso.com", ""),
			entry("activated", "jitaccess", ""),
			entry("refused", "p03@contoso.com", "approved: request is active"),
		}}
	for _, c := range []struct {
		typ, actor string
		baseline   int
		want       string // the entry's type and actor, "" none
	}{
		{access.TypeRequested, "N01@Contoso.com", 0, "requested n01@contoso.com"},
		{access.TypeRequested, "5e5e0000-0000-4000-8000-000000000001", 0, "requested n01@contoso.com"}, // object id → requesterUpn
		{access.TypeApproved, "5E5E0000-0000-4000-8000-000000000002", 0, "approved p01@contoso.com"},   // object id → approverUpn
		{access.TypeApproved, "p01@contoso.com", 2, ""},                                                // before the baseline
		{access.TypeApproved, "p03@contoso.com", 2, "refused p03@contoso.com"},
		{access.TypeApproved, "5e5e0000-0000-4000-8000-00000000000b", 2, "refused p03@contoso.com"}, // unknown id: any person
		{access.TypeApproved, "5e5e0000-0000-4000-8000-00000000000b", 4, ""},
		{access.TypeDenied, "p01@contoso.com", 0, ""},
		{access.TypeApproved, "p01@contoso.com", 99, "approved p01@contoso.com"}, // a shorter history: all of it
	} {
		got := ""
		if e := findEffect(r, c.baseline, c.typ, c.actor); e != nil {
			got = e.Type + " " + e.Actor
		}
		if got != c.want {
			t.Errorf("%s by %s after %d: %q, want %q", c.typ, c.actor, c.baseline, got, c.want)
		}
	}
}

// With --wait the read API is read before anything is sent; credentials go
// in headers and are never printed.
func TestSendWaitReadsFirstAndKeepsSecrets(t *testing.T) {
	d := newDeployment(t)
	d.onEvent = handlerLike
	d.key, d.token = "fn-key-123", "tok-456"

	// Without credentials: 401 before sending, nothing sent, exit 1.
	code, out, errs := run(t, Send, "requested", "--wait", "--sandbox", d.URL, "--requester", "n01@contoso.com", "--profile", "aks-admin")
	if code != ExitFailed || out != "" || !strings.Contains(errs, "nothing sent") || !strings.Contains(errs, "--api-token") || len(d.events) != 0 {
		t.Fatalf("unauthorized: exit %d, out %q, err %q, %d sent", code, out, errs, len(d.events))
	}

	var o, e bytes.Buffer
	env := Env{Stdout: &o, Stderr: &e, Loc: cet, Getenv: func(k string) string {
		return map[string]string{"JIT_API_TOKEN": "tok-456", "JIT_FUNCTION_KEY": "fn-key-123"}[k]
	}}
	code = Send(context.Background(), []string{"requested", "--wait", "--sandbox", d.URL, "--request-id", "r1",
		"--requester", "n01@contoso.com", "--profile", "aks-admin"}, env)
	if code != ExitOK || len(d.events) != 1 {
		t.Fatalf("with credentials: exit %d, %s%s", code, o.String(), e.String())
	}
	for _, u := range d.urls {
		if strings.Contains(u, "fn-key") || strings.Contains(u, "tok-") {
			t.Fatalf("a credential in a URL: %s", u)
		}
	}

	// The API down before sending: nothing sent, exit 1; the error names
	// the API but no credential.
	code, out, errs = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--api", "http://127.0.0.1:1",
		"--code", "fn-key-123", "--api-token", "tok-456", "--request-id", "r1", "--approver", "p01@contoso.com")
	if code != ExitFailed || len(d.events) != 1 || strings.Contains(out+errs, "fn-key") || strings.Contains(out+errs, "tok-") {
		t.Fatalf("API down: exit %d, out %q, err %q", code, out, errs)
	}

	// A 403 while waiting (the token lost its role): exit 1, sent.
	d.onEvent = func(d *deployment, ev access.Event) { d.status = 403 }
	code, _, errs = run(t, Send, "approved", "--wait", "--sandbox", d.URL, "--code", "fn-key-123", "--api-token", "tok-456",
		"--request-id", "r1", "--approver", "p01@contoso.com")
	if code != ExitFailed || !strings.Contains(errs, "was sent, but its outcome cannot be read") || !strings.Contains(errs, "JitAccess.Read") {
		t.Fatalf("403 while waiting: exit %d, err %q", code, errs)
	}
}

func TestSendWaitUsage(t *testing.T) {
	d := newDeployment(t)
	for _, args := range [][]string{
		{"approved", "--request-id", "r1", "--approver", "p01", "--timeout", "5s"},                                          // without --wait
		{"approved", "--request-id", "r1", "--approver", "p01", "--api", "http://127.0.0.1:2"},                              // without --wait
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--print"},                                        // both
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--timeout", "soon"},                              // bad timeout
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--timeout", "-5s"},                               // negative
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--namespace", "x.servicebus.windows.net"},        // no API
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--api", "http://api.example.com", "--code", "k"}, // key over http
		{"approved", "--request-id", "r1", "--approver", "p01", "--wait", "--api", "ftp://x"},
	} {
		code, _, errs := run(t, Send, append(args, "--sandbox", d.URL)...)
		if code != ExitUsage || errs == "" || strings.Contains(errs, "k\n") {
			t.Errorf("%v: exit %d, err %q", args, code, errs)
		}
	}
	if len(d.events) != 0 || d.reads != 0 {
		t.Fatalf("%d sent, %d read for usage errors", len(d.events), d.reads)
	}
}

func TestSendHelpDocumentsExitCodes(t *testing.T) {
	_, out, _ := run(t, Send, "--help")
	for _, want := range []string{"--wait", "--timeout D", "--api URL", "--api-token", "$JIT_API_TOKEN",
		"0  applied", "4  rejected", "5  refused", "6  failed", "7  timeout", "2  invalid", "1  not sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("send --help does not say %q", want)
		}
	}
	if ExitRejected != 4 || ExitRefused != 5 || ExitRequestFailed != 6 || ExitTimeout != 7 || ExitNotFound != 3 || ExitUsage != 2 || ExitFailed != 1 {
		t.Fatal("the documented exit codes changed")
	}
}
