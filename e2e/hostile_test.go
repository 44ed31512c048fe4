package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/seed"
	"github.com/jitaccess/jitaccess/internal/tablestore"
)

// Hostile input through the built binary (issue 6, item 5; docs/design.md, rule 7
// and Semantics). Every input is delivered as Service Bus would (devhost) and must
// be acknowledged (200, one invocation, never dead-lettered), recorded as
// rejected or refused (or, for inputs that are valid once their extra noise
// is ignored, recorded exactly as the valid event would be), and change
// nothing in the tenant: no membership write to any group, no PIM request,
// no session revoked.

// hxKind is what a hostile input must leave behind.
type hxKind int

const (
	hxRejNoID     hxKind = iota // a rejection record without request id (no usable requestId)
	hxRejStray                  // a rejection record naming a request that does not exist
	hxRejected                  // a new request with state rejected and a reason
	hxRefused                   // the pending request gains one "refused" entry, stays pending
	hxRejOnPend                 // the pending request gains one "rejected" entry, stays pending
	hxNoop                      // the pending request is unchanged (duplicate or no-op)
	hxPendingOnly               // a new pending request for aks-admin, timed by jitaccess's clock
)

func (k hxKind) String() string {
	return [...]string{"rejected (no id)", "rejected (stray)", "rejected", "refused", "rejected on pending", "no-op", "pending"}[k]
}

type hxCase struct {
	name string
	body []byte
	kind hxKind
	id   string // the request id a hxRejected/hxPendingOnly/hxRejStray case names
}

// hxPending is the request every approval-style hostile input aims at:
// requested by n01 (by UPN), pending, needing one approval.
const hxPending = "hx-pending"

// hxEvent builds a CloudEvent with the given data (any JSON value) and extra
// top-level attributes; attrs override the defaults.
func hxEvent(typ string, data any, attrs map[string]any) []byte {
	ev := map[string]any{"specversion": "1.0", "id": eventID(), "source": "/e2e/hostile", "type": typ,
		"time": time.Now().UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data}
	for k, v := range attrs {
		if v == nil {
			delete(ev, k)
			continue
		}
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func hxReq(id string, kv ...any) map[string]any {
	d := map[string]any{"requestId": id, "requester": seed.UPN("n01"), "profile": "aks-admin", "justification": "hostile e2e"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(d, kv[i].(string))
			continue
		}
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

func hxApprove(approver any) map[string]any {
	return map[string]any{"requestId": hxPending, "approver": approver, "comment": "hostile"}
}

func hxCases() []hxCase {
	var cs []hxCase
	add := func(name string, kind hxKind, id string, body []byte) {
		cs = append(cs, hxCase{name: name, body: body, kind: kind, id: id})
	}
	rejected := func(name, id string, data map[string]any) {
		add(name, hxRejected, id, hxEvent(access.TypeRequested, data, nil))
	}
	refused := func(name string, typ string, data map[string]any) {
		add(name, hxRefused, "", hxEvent(typ, data, nil))
	}
	n := 0
	rid := func() string { n++; return fmt.Sprintf("hx-%02d", n) }

	// ---- size and structure ----
	big := strings.Repeat("A", (1<<20)+1024)
	add("body over the 1 MiB invocation limit", hxRejNoID, "", hxEvent(access.TypeRequested, hxReq(rid(), "justification", big), nil))
	add("event over the 64 KiB limit", hxRejNoID, "", hxEvent(access.TypeRequested, hxReq(rid(), "justification", strings.Repeat("B", 70<<10)), nil))
	add("deep JSON (200 levels) in data", hxRejNoID, "", []byte(`{"specversion":"1.0","id":"hx-deep1","source":"/e2e","type":"jit.access.requested","data":{"requestId":"hx-deep1","ticket":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`}}`))
	add("deep JSON (50k levels)", hxRejNoID, "", []byte(strings.Repeat(`{"a":`, 50000)+"1"+strings.Repeat("}", 50000)))
	add("not JSON", hxRejNoID, "", []byte("this is not JSON"))
	add("empty body", hxRejNoID, "", []byte(""))
	add("whitespace only", hxRejNoID, "", []byte(" \n\t "))
	add("JSON array of events", hxRejNoID, "", []byte("["+string(hxEvent(access.TypeRequested, hxReq("hx-arr"), nil))+"]"))
	add("JSON null", hxRejNoID, "", []byte("null"))
	add("JSON number", hxRejNoID, "", []byte("42"))
	add("JSON string", hxRejNoID, "", []byte(`"hello"`))
	add("truncated JSON", hxRejNoID, "", hxEvent(access.TypeRequested, hxReq("hx-trunc"), nil)[:40])
	add("NUL bytes", hxRejNoID, "", []byte("{\x00\x00}"))
	add("invalid UTF-8 in requestId", hxRejNoID, "", []byte("{\"specversion\":\"1.0\",\"id\":\"hx-u1\",\"source\":\"/e2e\",\"type\":\"jit.access.requested\",\"data\":{\"requestId\":\"hx-\xff\xfe\",\"requester\":\"n01@contoso.com\",\"profile\":\"aks-admin\",\"justification\":\"x\"}}"))
	add("invalid UTF-8 in type", hxRejNoID, "", []byte("{\"specversion\":\"1.0\",\"id\":\"hx-u2\",\"source\":\"/e2e\",\"type\":\"jit.access.\xc0\xafrequested\",\"data\":{}}"))

	// ---- CloudEvent attributes ----
	add("data null", hxRejNoID, "", hxEvent(access.TypeRequested, nil, nil))
	add("data missing", hxRejNoID, "", hxEvent(access.TypeRequested, nil, map[string]any{"data": nil}))
	add("data is an array", hxRejNoID, "", hxEvent(access.TypeRequested, []any{hxReq("hx-da")}, nil))
	add("data is a JSON string", hxRejNoID, "", hxEvent(access.TypeRequested, string(mustJSON(hxReq("hx-ds"))), nil))
	add("data_base64 instead of data", hxRejNoID, "", hxEvent(access.TypeRequested, nil, map[string]any{"data": nil, "data_base64": "eyJyZXF1ZXN0SWQiOiJ4In0="}))
	id := rid()
	add("specversion 0.3", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"specversion": "0.3"}))
	id = rid()
	add("specversion as a number", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"specversion": 1.0}))
	id = rid()
	add("CloudEvent id missing", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"id": nil}))
	id = rid()
	add("CloudEvent id with control characters", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"id": "evt\r\nInjected: yes"}))
	id = rid()
	add("CloudEvent id of 300 characters", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"id": strings.Repeat("i", 300)}))
	id = rid()
	add("source missing", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"source": nil}))
	id = rid()
	add("type unknown (jit.access.granted)", hxRejStray, id, hxEvent("jit.access.granted", hxReq(id), nil))
	id = rid()
	add("type in upper case", hxRejStray, id, hxEvent(strings.ToUpper(access.TypeRequested), hxReq(id), nil))
	id = rid()
	add("datacontenttype text/plain", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"datacontenttype": "text/plain"}))
	id = rid()
	add("time not RFC 3339", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"time": "yesterday"}))
	id = rid()
	add("time as a number", hxRejected, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"time": 0}))

	// ---- wrong types in data ----
	id = rid()
	rejected("requester as a number", id, hxReq(id, "requester", 42))
	id = rid()
	rejected("requester as an object", id, hxReq(id, "requester", map[string]any{"id": seed.UserN01}))
	id = rid()
	rejected("requester as an array", id, hxReq(id, "requester", []string{seed.UserN01, seed.UserP01}))
	id = rid()
	rejected("requester null", id, hxReq(id, "requester", nil))
	id = rid()
	rejected("duration as a number", id, hxReq(id, "duration", 3600))
	id = rid()
	rejected("justification as a boolean", id, hxReq(id, "justification", true))
	id = rid()
	rejected("justification missing (profile requires one)", id, hxReq(id, "justification", nil))
	id = rid()
	rejected("justification of 2000 characters", id, hxReq(id, "justification", strings.Repeat("j", 2000)))
	add("requestId as a number", hxRejNoID, "", hxEvent(access.TypeRequested, hxReq("x", "requestId", 123), nil))

	// ---- request ids ----
	for _, bad := range []string{"a/b", "../" + hxPending, `hx"quote`, "hx-ünïcödé", "", strings.Repeat("r", 129), " hx-space", "hx\u202eevil", "%2e%2e", "hx-pending\n", "hx-<script>"} {
		add(fmt.Sprintf("requestId %q", clipName(bad)), hxRejNoID, "", hxEvent(access.TypeRequested, hxReq(bad), nil))
	}

	// ---- requesters: spoofing, guests, non-users ----
	for _, c := range []struct{ name, requester string }{
		{"lookalike UPN with trailing dot", "n01@contoso.com."},
		{"lookalike domain contoso.co", "n01@contoso.co"},
		{"lookalike domain suffix", "n01@contoso.com.evil.example"},
		{"homoglyph (Cyrillic o) in domain", "n01@c\u043entoso.com"},
		{"UPN with a space", "n01 @contoso.com"},
		{"UPN with NUL", "n01@contoso.com\x00"},
		{"UPN with trailing newline", "n01@contoso.com\n"},
		{"UPN without domain", "n01"},
		{"percent-encoded UPN", "%6e01@contoso.com"},
		{"path traversal in requester", "../groups/" + seed.GroupFinanceAdmins},
		{"guest #EXT# UPN", seed.GuestUPN},
		{"guest object id", seed.UserG01},
		{"user in no group", seed.UPN("x01")},
		{"disabled user", seed.UPN("d01")},
		{"approver who is not eligible", seed.UPN("p01")},
		{"a group's object id (finance-admins) as requester", seed.GroupFinanceAdmins},
		{"unknown object id", "5e5e0000-0000-4000-8000-0000000000ff"},
	} {
		id = rid()
		rejected("requester: "+c.name, id, hxReq(id, "requester", c.requester))
	}

	// ---- profiles and other groups ----
	for _, c := range []struct{ name, profile string }{
		{"profile finance-admins", "finance-admins"},
		{"profile = finance-admins object id", seed.GroupFinanceAdmins},
		{"profile with path", "aks-admin/../finance-admins"},
		{"profile in upper case", "AKS-ADMIN"},
		{"profile missing", ""},
	} {
		id = rid()
		rejected(c.name, id, hxReq(id, "profile", c.profile))
	}

	// ---- durations ----
	for _, d := range []string{"PT9H", "P1D", "P100Y", "PT99999999999999999999H", "PT0S", "PT-1H", "-PT1H", "1h", "3600", "PT", "P", "PT1H ", "PT0.0000000001S", "P1W", "pt1h\u0000"} {
		id = rid()
		rejected(fmt.Sprintf("duration %q", d), id, hxReq(id, "duration", d))
	}

	// ---- approvals, denials, cancels, revokes that may not act (→ refused) ----
	for _, c := range []struct{ name, approver string }{
		{"approver = requester, upper-case UPN", strings.ToUpper(seed.UPN("n01"))},
		{"approver = requester as object id", seed.UserN01},
		{"approver = requester as upper-case object id", strings.ToUpper(seed.UserN01)},
		{"approver in no group", seed.UPN("x01")},
		{"disabled approver", seed.UPN("d02")},
		{"unknown approver", "ghost@contoso.com"},
		{"lookalike approver with trailing dot", "p01@contoso.com."},
		{"approver = the approvers group's object id", seed.GroupAKSApprovers},
		{"guest approver", seed.GuestUPN},
	} {
		refused("approve: "+c.name, access.TypeApproved, hxApprove(c.approver))
	}
	refused("deny by a non-approver", access.TypeDenied, map[string]any{"requestId": hxPending, "approver": seed.UPN("n02"), "reason": "no"})
	refused("deny by the requester", access.TypeDenied, map[string]any{"requestId": hxPending, "approver": seed.UserN01, "reason": "no"})
	refused("cancel by someone other than the requester", access.TypeCancelled, map[string]any{"requestId": hxPending, "by": seed.UPN("p01")})
	refused("revoke by a non-approver", access.TypeRevoked, map[string]any{"requestId": hxPending, "by": seed.UPN("n02"), "reason": "x"})
	// Duplicate keys: encoding/json keeps the last; here both values are
	// refused, so either reading refuses it.
	add("duplicate approver keys (x01, then the requester)", hxRefused, "", []byte(`{"specversion":"1.0","id":"`+eventID()+`","source":"/e2e","type":"jit.access.approved","data":{"requestId":"`+hxPending+`","approver":"x01@contoso.com","approver":"n01@contoso.com"}}`))

	// ---- invalid events that name the pending request (→ rejected entry) ----
	add("approval without approver", hxRejOnPend, "", hxEvent(access.TypeApproved, map[string]any{"requestId": hxPending}, nil))
	add("approver as a number", hxRejOnPend, "", hxEvent(access.TypeApproved, hxApprove(7), nil))
	add("approver with a tab", hxRejOnPend, "", hxEvent(access.TypeApproved, hxApprove(seed.UPN("p01")+"\t"), nil))
	add("approver as an array of approvers", hxRejOnPend, "", hxEvent(access.TypeApproved, hxApprove([]string{seed.UPN("p01"), seed.UPN("p03")}), nil))
	add("approval with groupId as an object", hxRejOnPend, "", hxEvent(access.TypeApproved, map[string]any{"requestId": hxPending, "approver": map[string]any{"groupId": seed.GroupFinanceAdmins}}, nil))

	// ---- no-ops: expire before the end, with a time far in the future ----
	add("expire with CloudEvent time 2999", hxNoop, "", hxEvent(access.TypeExpire, map[string]any{"requestId": hxPending}, map[string]any{"time": "2999-12-31T23:59:59Z"}))
	add("expire with CloudEvent time 1970", hxNoop, "", hxEvent(access.TypeExpire, map[string]any{"requestId": hxPending}, map[string]any{"time": "1970-01-01T00:00:00Z"}))

	// ---- valid once the noise is ignored: timed and targeted by jitaccess only ----
	id = rid()
	add("CloudEvent time 1970", hxPendingOnly, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"time": "1970-01-01T00:00:00Z"}))
	id = rid()
	add("CloudEvent time 2999", hxPendingOnly, id, hxEvent(access.TypeRequested, hxReq(id), map[string]any{"time": "2999-12-31T23:59:59Z"}))
	id = rid()
	add("unknown fields groupId/targetGroupId = finance-admins", hxPendingOnly, id, hxEvent(access.TypeRequested,
		hxReq(id, "groupId", seed.GroupFinanceAdmins, "targetGroupId", seed.GroupFinanceAdmins, "group", "finance-admins"), nil))
	id = rid()
	add("extension attributes naming finance-admins", hxPendingOnly, id, hxEvent(access.TypeRequested, hxReq(id),
		map[string]any{"targetgroupid": seed.GroupFinanceAdmins, "subject": "/groups/" + seed.GroupFinanceAdmins}))
	return cs
}

func clipName(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// hxWrite reports whether a Graph call changes the tenant.
func hxWrite(c graphsim.Call) bool {
	switch c.Method {
	case http.MethodGet, http.MethodHead:
		return false
	case http.MethodPost:
		return strings.HasSuffix(c.Path, "/members/$ref") || strings.HasSuffix(c.Path, "/revokeSignInSessions") ||
			strings.Contains(c.Path, "assignmentScheduleRequests")
	}
	return true // PATCH, PUT, DELETE
}

func hxWrites(calls []graphsim.Call) []string {
	var out []string
	for _, c := range calls {
		if hxWrite(c) {
			out = append(out, c.Method+" "+c.Path)
		}
	}
	return out
}

// invocations counts the binary's answers to AccessRequests by status.
func (e *env) invocations() (ok, failed int) {
	for _, l := range e.logLines() {
		if l["function"] != "AccessRequests" {
			continue
		}
		switch l["msg"] {
		case "invocation done":
			if s, _ := l["status"].(float64); s == 200 {
				ok++
			} else {
				failed++
			}
		case "invocation failed":
			failed++
		}
	}
	return ok, failed
}

func (e *env) store() *tablestore.Store {
	s, err := tablestore.NewFromConnectionString(e.tables, tablestore.Options{Prefix: e.prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	st := e.store()
	rejections := func() []access.Rejection {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := st.RecentRejections(ctx, tablestore.MaxListLimit)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	e.send(access.TypeRequested, map[string]string{"requestId": hxPending, "requester": seed.UPN("n01"), "profile": "aks-admin", "justification": "hostile e2e target"})
	if v := e.mustGet(hxPending); v.State != "pending" {
		t.Fatalf("setup: %s %v", v.State, v.types())
	}
	cases := hxCases()
	if len(cases) < 60 {
		t.Fatalf("only %d hostile inputs", len(cases))
	}
	counts := map[hxKind]int{}
	for _, c := range cases {
		before := e.mustGet(hxPending)
		rejBefore := len(rejections())
		okBefore, failBefore := e.invocations()
		e.graph.ResetCalls()
		start := time.Now()

		e.sendRaw(c.body)

		fail := func(format string, a ...any) {
			t.Errorf("%s [%s]: %s", c.name, c.kind, fmt.Sprintf(format, a...))
		}
		// Acknowledged once, never retried, never dead-lettered.
		waitUntil(t, c.name+": invocation log", 5*time.Second, func() bool { ok, failed := e.invocations(); return ok+failed > okBefore+failBefore })
		if ok, failed := e.invocations(); ok != okBefore+1 || failed != failBefore {
			fail("invocations: %d answered 200, %d failed; want exactly one 200", ok-okBefore, failed-failBefore)
		}
		if n := len(e.host.DeadLetters()); n != 0 {
			fail("%d dead letters", n)
		}
		// Nothing written to the tenant.
		if w := hxWrites(e.graph.Calls()); len(w) != 0 {
			fail("Graph writes %v", w)
		}
		rejs := rejections()
		after := e.mustGet(hxPending)
		if c.kind != hxRefused && c.kind != hxRejOnPend && len(after.History) != len(before.History) {
			fail("pending request changed: %v", after.types())
		}
		if after.State != "pending" || len(after.Approvals) != 0 {
			fail("pending request is now %s with %d approvals", after.State, len(after.Approvals))
		}
		newRej := len(rejs) - rejBefore
		switch c.kind {
		case hxRejNoID, hxRejStray:
			if newRej != 1 {
				fail("%d new rejection records, want 1", newRej)
				break
			}
			r := rejs[0] // newest first
			if r.Reason == "" {
				fail("rejection without reason")
			}
			if c.kind == hxRejNoID && r.RequestID != "" {
				fail("rejection names request %q", r.RequestID)
			}
			if c.kind == hxRejStray && r.RequestID != c.id {
				fail("rejection names %q, want %q", r.RequestID, c.id)
			}
			if c.kind == hxRejStray {
				if _, code := e.get(c.id); code != http.StatusNotFound {
					fail("stray event created request %s (%d)", c.id, code)
				}
			}
		case hxRejected:
			v := e.mustGet(c.id)
			if v.State != "rejected" || v.Reason == "" || v.has("rejected") != 1 || v.ActivatedAt != "" {
				fail("request %s: state %s reason %q history %v", c.id, v.State, v.Reason, v.types())
			}
		case hxRefused, hxRejOnPend:
			want := map[hxKind]string{hxRefused: "refused", hxRejOnPend: "rejected"}[c.kind]
			if len(after.History) != len(before.History)+1 || after.History[len(after.History)-1].Type != want {
				fail("pending request history %v, want one more %q", after.types(), want)
			} else if d := after.History[len(after.History)-1].Detail; d == "" {
				fail("%s entry without reason", want)
			}
		case hxNoop:
		case hxPendingOnly:
			v := e.mustGet(c.id)
			at, _ := time.Parse(time.RFC3339Nano, v.RequestedAt)
			if v.State != "pending" || v.GroupID != seed.GroupAKSAdmin || at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
				fail("request %s: state %s group %s requestedAt %s (sent at %s)", c.id, v.State, v.GroupID, v.RequestedAt, start.Format(time.RFC3339Nano))
			}
		}
		if c.kind != hxRejNoID && c.kind != hxRejStray && newRej != 0 {
			fail("%d unexpected rejection records", newRej)
		}
		counts[c.kind]++
	}
	// A sweep now: the time-travel requests are not timed out (their
	// approval timeout runs from jitaccess's clock), nothing is written.
	e.graph.ResetCalls()
	e.sweep()
	if w := hxWrites(e.graph.Calls()); len(w) != 0 {
		t.Errorf("sweep wrote %v", w)
	}
	for _, c := range cases {
		if c.kind == hxPendingOnly {
			if v := e.mustGet(c.id); v.State != "pending" {
				t.Errorf("%s: %s after sweep", c.name, v.State)
			}
		}
	}
	for _, g := range []string{seed.GroupAKSAdmin, seed.GroupFinanceAdmins, seed.GroupAKSOps} {
		for _, u := range []string{seed.UserN01, seed.UserN02, seed.UserX01, seed.UserG01, seed.UserP01} {
			if e.graph.IsDirectMember(g, u) {
				t.Errorf("%s is a member of %s", u, g)
			}
		}
	}
	for _, u := range []string{seed.UserN01, seed.UserN02, seed.UserX01, seed.UserG01, seed.UserP01, seed.UserS01} {
		if n := e.graph.RevokeCount(u); n != 0 {
			t.Errorf("sessions of %s revoked %d times", u, n)
		}
	}
	t.Logf("%d hostile inputs: %v", len(cases), counts)
}

// Time travel on an active grant: the CloudEvent time of the approval and of
// an early expire never moves the end (docs/design.md, Semantics, clock).
func TestHostileTimeTravelActiveGrant(t *testing.T) {
	e := newEnv(t)
	e.sendRaw(hxEvent(access.TypeRequested, map[string]any{"requestId": "hx-tt", "requester": seed.UPN("n02"), "profile": "aks-admin",
		"justification": "tt", "duration": "PT1H"}, map[string]any{"time": "1970-01-01T00:00:00Z"}))
	start := time.Now()
	e.sendRaw(hxEvent(access.TypeApproved, map[string]any{"requestId": "hx-tt", "approver": seed.UPN("p01")}, map[string]any{"time": "2999-12-31T23:59:59Z"}))
	v := e.mustGet("hx-tt")
	act, _ := time.Parse(time.RFC3339Nano, v.ActivatedAt)
	end, _ := time.Parse(time.RFC3339Nano, v.EndsAt)
	if v.State != "active" || act.Before(start.Add(-time.Second)) || act.After(time.Now().Add(time.Second)) || end.Sub(act) != time.Hour {
		t.Fatalf("activation: %+v", v)
	}
	for _, ts := range []string{"2999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)} {
		e.sendRaw(hxEvent(access.TypeExpire, map[string]any{"requestId": "hx-tt"}, map[string]any{"time": ts}))
	}
	e.sweep()
	if v2 := e.mustGet("hx-tt"); v2.State != "active" || v2.EndsAt != v.EndsAt || !e.graph.IsDirectMember(seed.GroupAKSAdmin, seed.UserN02) || e.graph.RevokeCount(seed.UserN02) != 0 {
		t.Fatalf("expire with a forged time ended the grant: %s %v", v2.State, v2.types())
	}
	if len(e.host.DeadLetters()) != 0 {
		t.Fatal("dead letters")
	}
}
