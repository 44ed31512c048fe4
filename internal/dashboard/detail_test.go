package dashboard

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/memstore"
)

// when is the markup of a time on a request's page (to the second).
func when(t time.Time) string {
	s := newStampSecs(t)
	return `<time datetime="` + s.ISO + `" title="` + s.Title + `" data-s>` + s.Show + `</time>`
}

func TestRequestPage(t *testing.T) {
	store := seed(now0)
	h := newTestHandler(store)
	rec, body := get(t, h, "/api/dashboard?request=req-kept")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	ago := func(d time.Duration) time.Time { return now0.Add(-d) }
	fields := sectionHTML(t, body, "fields")
	mustContain(t, "fields", fields,
		"<dt>Request id</dt>", `<span class="mono">req-kept</span>`,
		"<dt>State</dt>", `<span class="badge muted">expired</span>`,
		"<dt>Source</dt>", "jitaccess (request events)",
		"<dt>Requester</dt>", n01, `<span class="subid">object id `+n01ID+`</span>`,
		"<dt>Profile</dt>", "aks-admin",
		"<dt>Activation</dt>", "membership: jitaccess adds and removes the group membership",
		"<dt>Group</dt>", `<span class="mono">`+adminGrp+`</span> <span class="note">(object id)</span>`,
		"<dt>Duration</dt>", `30m 00s</span> <span class="note">(PT30M)</span>`,
		"<dt>Justification</dt>", `<span class=" free">check the node pool</span>`,
		"<dt>Ticket</dt>", "CHG-7",
		"<dt>Approvals</dt>", "1 of 1 required",
		"<dt>Requested</dt>", when(ago(75*time.Minute)), "(1h 15m ago)",
		"<dt>Activated</dt>", when(ago(70*time.Minute)),
		"<dt>Was to end</dt>", "<dt>Ended</dt>", when(ago(40*time.Minute)), "(40m 00s ago)",
		"<dt>Access gone by</dt>", when(now0.Add(50*time.Minute)), "(in 50m 00s)", "— access may linger until then",
		"<dt>Sign-in sessions</dt>", `not needed<span class="cause">membership kept: still granted by <a href="?request=req-active-xss">req-active-xss</a></span>`,
		"<dt>Reason</dt>")
	mustNotContain(t, "fields", fields, "Approval deadline", "Scope", "Unfinished work")
	mustContain(t, "alert", body, `<p class="alert busy" role="status"><strong>Access may linger until</strong> `+when(now0.Add(50*time.Minute)))

	appr := sectionHTML(t, body, "approvals")
	mustContain(t, "approvals", appr, p01, when(ago(70*time.Minute)), "ok &lt;b&gt;for&lt;/b&gt; 30m", "object id 0d7a7d8e-6a8b-4f2b-9a59-1c3c0f6a0002")

	steps := sectionHTML(t, body, "steps")
	mustContain(t, "steps", steps, `<span class="count">2</span>`, "nothing to do",
		`membership already held through grant <a href="?request=req-active-xss">req-active-xss</a>`)

	hist := sectionHTML(t, body, "history")
	mustContain(t, "history", hist, `<span class="count">6</span>`, `<ol class="timeline">`,
		`<li class="info">`, `<span class="badge info">requested</span>`, "by n01@contoso.example", "event evt-kept-1",
		`<li class="ok">`, `<span class="badge ok">approved</span>`, `<li class="note step">`, `<span class="badge muted">expired</span>`)
	if strings.Count(hist, "<li ") != 6 {
		t.Errorf("%d timeline entries, want 6", strings.Count(hist, "<li "))
	}
	// Oldest first, as stored.
	if strings.Index(hist, "requested</span>") > strings.Index(hist, "expired</span>") {
		t.Error("timeline not in stored order")
	}
	// An ended request does not reload itself.
	mustNotContain(t, "ended", body, `http-equiv="refresh"`, "refreshes every")
	mustContain(t, "title", body, "<title>Request req-kept · jitaccess</title>", `<a href="?">← Dashboard</a>`)
	onlyTimeScript(t, "request page", body)
	// One read, no listing.
	if store.gets != 1 || len(store.seen()) != 0 {
		t.Errorf("%d reads and %d listings for a request's page", store.gets, len(store.seen()))
	}
}

func TestRequestPageAzureRole(t *testing.T) {
	_, body := get(t, newTestHandler(seed(now0)), "/api/dashboard?request=req-role")
	mustContain(t, "fields", sectionHTML(t, body, "fields"),
		"azure-role: an Azure role assignment at the profile&#39;s scope",
		"<dt>Scope</dt>", "managedClusters/aks-prod", "<dt>Role definition</dt>", "roleDefinitions/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
		"<dt>Reason</dt>", "done early", "— the access is gone", "<dt>Sign-in sessions</dt>\n<dd>revoked</dd>",
		"none required (approved by the profile)")
	mustNotContain(t, "fields", sectionHTML(t, body, "fields"), "<dt>Group</dt>")
	steps := sectionHTML(t, body, "steps")
	mustContain(t, "steps", steps, `<span class="kind">ARM</span><strong>role assignment created</strong>`,
		`<span class="kind">ARM</span><strong>role assignment deleted</strong>`, `<span class="kind">Graph</span><strong>sign-in sessions revoked</strong>`)
	mustContain(t, "history", sectionHTML(t, body, "history"), `<li class="step">`, "ARM: role assignment created", "Graph: sign-in sessions revoked")
	mustNotContain(t, "alerts", body, `class="alert`) // access gone: nothing lingers
	mustContain(t, "approvals", sectionHTML(t, body, "approvals"), "None needed: the profile approves this request by itself.")
}

func TestRequestPageOpenRequests(t *testing.T) {
	store := seed(now0)
	for _, r := range store.reqs {
		if r.ID == "req-pending-1" {
			r.ApprovalDeadline = now0.Add(20 * time.Hour)
		}
	}
	h := newTestHandler(store)
	_, body := get(t, h, "/api/dashboard?request=req-pending-1")
	mustContain(t, "pending", body, `<meta http-equiv="refresh" content="15; url=?request=req-pending-1">`, "refreshes every 15 s",
		"<dt>Approval deadline</dt>", when(now0.Add(20*time.Hour)), "(in 20h 00m)", "1 of 2 required",
		"None yet: nothing is changed before the approval.", "<dt>Access gone by</dt>\n<dd>— <span class=\"note\">(set when a grant ends)</span></dd>")

	_, body = get(t, h, "/api/dashboard?request=req-ending-stuck")
	mustContain(t, "ending", body, `<span class="badge busy" title="ended; the membership is being removed and sessions revoked">ending</span>`,
		"<strong>Graph work unfinished: removing the group membership (4 attempts), since</strong> "+when(now0.Add(-10*time.Minute)),
		"<dt>Unfinished work</dt>", "<dt>Sign-in sessions</dt>\n<dd>not revoked (profile does not ask)</dd>")

	_, body = get(t, h, "/api/dashboard?request=req-failed")
	mustContain(t, "failed", body, `<p class="alert bad" role="status"><strong>Failed:</strong> Graph refused the membership change: Authorization_RequestDenied</p>`)

	_, body = get(t, h, "/api/dashboard?request=req-active-xss")
	mustContain(t, "active", body, "<dt>Ends</dt>", "(in 12m 30s)", "<dt>Sign-in sessions</dt>\n<dd>to be revoked when the grant ends</dd>")

	_, body = get(t, h, "/api/dashboard?request=pim-1234")
	mustContain(t, "pim", body, "PIM portal (an activation observed in Entra audit events)", "PIM (activated in the portal)",
		"Activated in the PIM portal: PIM&#39;s own policy applied.")
}

func TestRequestPageNotFound(t *testing.T) {
	store := seed(now0)
	store.reqs = append(store.reqs, &access.Request{ID: "waiting-1", State: access.Awaiting})
	h := newTestHandler(store)
	for _, id := range []string{"no-such-request", "waiting-1", "..%2Fetc", "%3Cb%3Ex", strings.Repeat("a", 200)} {
		rec, body := get(t, h, "/api/dashboard?request="+id)
		if rec.Code != 404 {
			t.Errorf("%s: status %d", id, rec.Code)
		}
		mustContain(t, id, body, "<h1>No such request</h1>", "No request has the id", `<a href="?">Show the dashboard</a>`, "HTTP 404")
		mustNotContain(t, id, body, "<b>x", `http-equiv="refresh"`)
	}
	if store.gets != 2 { // the invalid ids are not read
		t.Errorf("%d reads, want 2", store.gets)
	}
	rec, body := get(t, h, "/api/dashboard?request=nope", "Accept", "application/json")
	if rec.Code != 404 || !strings.Contains(body, `"error":"No request has the id`) {
		t.Errorf("json: %d %s", rec.Code, body)
	}
}

func TestRequestPageStoreProblems(t *testing.T) {
	h := newTestHandler(&fakeLister{err: fault.Wrap(fault.ErrTransient, "get", errors.New("dial tcp: refused"))})
	rec, body := get(t, h, "/api/dashboard?request=req-1")
	if rec.Code != 503 {
		t.Errorf("status %d", rec.Code)
	}
	mustContain(t, "503", body, "<h1>Storage is unreachable</h1>")
	mustNotContain(t, "503", body, "dial tcp")

	// A stored request that cannot be read says so (the log has why).
	st := memstore.New()
	ctx := context.Background()
	if err := st.SaveRequest(ctx, &access.Request{ID: "bad-1", State: access.Active, Profile: "aks-admin"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CorruptRequest(ctx, "bad-1", `{"justification":"<b>SECRET`); err != nil {
		t.Fatal(err)
	}
	h = New(Options{Store: st, Profiles: profiles, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec, body = get(t, h, "/api/dashboard?request=bad-1")
	if rec.Code != 500 {
		t.Errorf("unreadable: status %d", rec.Code)
	}
	mustContain(t, "unreadable", body, "<h1>Request cannot be read</h1>", "is stored but cannot be read")
	mustNotContain(t, "unreadable", body, "SECRET")
	// The dashboard links the unreadable id to that page.
	_, body = get(t, h, "/api/dashboard")
	mustContain(t, "link", sectionHTML(t, body, "attention"), `<a href="?request=bad-1"><code>bad-1</code></a>`)
}

// Everything a request carries is escaped on its page.
func TestRequestPageEscaping(t *testing.T) {
	bad := `</dd><script>alert(9)</script><img src=x onerror=alert(9)>"'`
	store := &fakeLister{reqs: []*access.Request{{
		ID: "req-x", State: access.Revoked, Requester: bad, RequesterUPN: bad, Profile: bad, GroupID: bad,
		Justification: bad, Ticket: bad, Reason: bad, PIMNote: bad, Scope: bad, RoleDefinitionID: bad, Activation: access.ActivationAzureRole,
		RequestedAt: now0.Add(-time.Hour), ActivatedAt: now0.Add(-time.Hour), EndedAt: now0,
		Approvals: []access.Approval{{Approver: bad, ApproverUPN: bad, At: now0, Comment: bad}},
		History: []access.HistoryEntry{{At: now0, Type: bad, Actor: bad, Detail: bad, EventID: bad},
			{At: now0, Type: access.HNote, Actor: bad, Detail: access.DetailKeptPrefix + bad}},
	}}}
	rec, body := get(t, New(Options{Store: store, Now: func() time.Time { return now0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}),
		"/api/dashboard?request=req-x")
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	low := strings.ToLower(body)
	for _, raw := range []string{"<img", "</dd><script", "alert(9)</script>"} {
		if strings.Contains(low, raw) {
			t.Errorf("raw %q on the page", raw)
		}
	}
	onlyTimeScript(t, "escaped", body)
	esc := html.EscapeString(`<script>alert(9)</script>`)
	if n := strings.Count(body, esc); n < 15 {
		t.Errorf("the escaped value appears %d times, want every field", n)
	}
	// The grant list after the prefix is not made links of: it is no list
	// of request ids.
	mustNotContain(t, "cause", body, `href="?request=&lt;`)
}
