package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/api"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// visible reports whether a stored request is a request for the read API:
// an awaiting entry only holds events that came before their request.
func visible(r *access.Request) bool { return r != nil && r.State != access.Awaiting }

// viewState is the state shown. The in-flight states are shown as such
// ("activating": the grant is decided and the membership is being added;
// "ending": the end is decided and the removal and session revocation are
// being carried out), so that "active" always means the access is there and
// an ended state always means it is gone (docs/design.md, Semantics: in-flight states).
func viewState(s access.State) string { return string(s) }

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func toView(r *access.Request) api.Request {
	v := api.Request{
		ID: r.ID, Source: string(r.Source), State: viewState(r.State),
		Requester: r.Requester, RequesterUPN: r.RequesterUPN, Profile: r.Profile, GroupID: r.GroupID,
		RequestedAt: utc(r.RequestedAt), ActivatedAt: utc(r.ActivatedAt), EndsAt: utc(r.EndsAt), EndedAt: utc(r.EndedAt),
		Scope: r.Scope, RoleDefinitionID: r.RoleDefinitionID, Justification: r.Justification, Ticket: r.Ticket,
		AccessGoneBy: utc(r.AccessGoneBy),
		Reason:       r.Reason,
		Note:         r.PIMNote,
		Approvals:    make([]api.Approval, 0, len(r.Approvals)),
		History:      make([]api.HistoryEntry, 0, len(r.History)),
	}
	if v.Source == "" {
		v.Source = string(access.SourceEvents)
	}
	switch {
	case r.Activation != "":
		v.Activation = r.Activation
	case r.Source == access.SourceEvents || r.Source == "":
		v.Activation = access.ActivationMembership
	}
	if r.State == access.Pending {
		v.ApprovalDeadline = utc(r.ApprovalDeadline)
	}
	if r.Duration > 0 {
		v.Duration = r.Duration.String()
	}
	for _, a := range r.Approvals {
		v.Approvals = append(v.Approvals, api.Approval{Approver: a.Approver, ApproverUPN: a.ApproverUPN, At: utc(a.At), Comment: a.Comment})
	}
	for _, h := range r.History {
		v.History = append(v.History, api.HistoryEntry{At: utc(h.At), Type: h.Type, Actor: h.Actor, Detail: h.Detail})
	}
	return v
}

// getRequest answers GET /api/requests/{id}.
func (s *server) getRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !access.ValidRequestID(id) {
		writeError(w, http.StatusNotFound, "no request with this id")
		return
	}
	if s.d.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "storage is not configured")
		return
	}
	req, err := s.d.Store.GetRequest(r.Context(), id)
	if err != nil {
		if fault.NotFound(err) {
			writeError(w, http.StatusNotFound, "no request with this id")
			return
		}
		readError(w, s.log, r, err)
		return
	}
	if !visible(req) {
		writeError(w, http.StatusNotFound, "no request with this id")
		return
	}
	writeJSON(w, http.StatusOK, toView(req))
}

// List limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

var listParams = map[string]bool{"state": true, "profile": true, "requester": true, "limit": true, "continuation": true,
	// The host forwards the function key in the query string.
	"code": true}

type listView struct {
	Items        []api.Request `json:"items"`
	Continuation string        `json:"continuation,omitempty"`
	// Unreadable are the ids of stored requests in this page's range that
	// cannot be decoded (broker.ListPage.Skipped): left out of items, so one
	// bad row never fails a listing, and named so that it is seen.
	Unreadable []string `json:"unreadable,omitempty"`
}

// listRequests answers GET /api/requests.
func (s *server) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k, vs := range q {
		if !listParams[k] {
			writeError(w, http.StatusBadRequest, "unknown query parameter "+strconv.Quote(clip(k, 32))+
				" (allowed: state, profile, requester, limit, continuation)")
			return
		}
		if len(vs) > 1 {
			writeError(w, http.StatusBadRequest, "query parameter "+strconv.Quote(k)+" is given more than once")
			return
		}
	}
	f := broker.ListFilter{Limit: DefaultListLimit}
	if st := q.Get("state"); st != "" {
		state, ok := parseState(st)
		if !ok {
			writeError(w, http.StatusBadRequest, "state must be one of pending, active, expired, revoked, cancelled, denied, timedout, rejected, failed, activating, ending")
			return
		}
		f.State = state
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	profile := q.Get("profile")
	if len(profile) > access.MaxProfileLen*4 {
		writeError(w, http.StatusBadRequest, "profile is too long")
		return
	}
	f.Profile = profile
	requester := strings.TrimSpace(q.Get("requester"))
	if len(requester) > access.MaxIdentityLen {
		writeError(w, http.StatusBadRequest, "requester is too long")
		return
	}
	if s.d.Store == nil {
		writeError(w, http.StatusServiceUnavailable, "storage is not configured")
		return
	}
	if requester != "" {
		id, found, err := s.resolveRequester(r.Context(), requester)
		if err != nil {
			readError(w, s.log, r, err)
			return
		}
		if !found {
			writeJSON(w, http.StatusOK, listView{Items: []api.Request{}})
			return
		}
		f.Requester = id
	}
	if c := q.Get("continuation"); c != "" {
		after, err := s.openContinuation(c, f)
		if err != nil {
			writeError(w, http.StatusBadRequest, "continuation is not valid for this query")
			return
		}
		f.After = after
	}
	page, err := s.d.Store.ListRequests(r.Context(), f)
	if err != nil {
		readError(w, s.log, r, err)
		return
	}
	out := listView{Items: make([]api.Request, 0, len(page.Items)), Unreadable: page.Skipped}
	for _, it := range page.Items {
		if visible(it) {
			out.Items = append(out.Items, toView(it))
		}
	}
	if page.Next != "" {
		out.Continuation = s.sealContinuation(page.Next, f)
	}
	writeJSON(w, http.StatusOK, out)
}

func parseState(s string) (access.State, bool) {
	st := access.State(s)
	for _, p := range access.PublicStates {
		if p == st {
			return st, true
		}
	}
	if st == access.Activating || st == access.Ending {
		return st, true
	}
	return "", false
}

// resolveRequester turns the requester filter into an object id: a UPN is
// looked up when a resolver is configured; unknown users match nothing.
func (s *server) resolveRequester(ctx context.Context, v string) (string, bool, error) {
	if !strings.Contains(v, "@") {
		return strings.ToLower(v), true, nil
	}
	if s.d.Users == nil {
		return strings.ToLower(v), true, nil
	}
	u, err := s.d.Users.LookupUser(ctx, v)
	switch {
	case fault.NotFound(err), fault.Permanent(err):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return strings.ToLower(u.ID), true, nil
}

// Continuation tokens: base64url(payload) "." base64url(HMAC-SHA256(key,
// payload)), payload = {"a": the store's position, "f": a digest of the
// filters}. Opaque to callers, tamper-evident, and bound to the filters they
// were issued for.
type continuation struct {
	After  string `json:"a"`
	Filter string `json:"f"`
}

var errBadContinuation = errors.New("bad continuation")

func filterDigest(f broker.ListFilter) string {
	h := sha256.Sum256([]byte(string(f.State) + "\x00" + f.Profile + "\x00" + f.Requester))
	return hex.EncodeToString(h[:8])
}

func (s *server) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("jitaccess-continuation-v1\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

func (s *server) sealContinuation(after string, f broker.ListFilter) string {
	payload, _ := json.Marshal(continuation{After: after, Filter: filterDigest(f)})
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.sign(payload))
}

func (s *server) openContinuation(tok string, f broker.ListFilter) (string, error) {
	if len(tok) > 4096 {
		return "", errBadContinuation
	}
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return "", errBadContinuation
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign(payload)) {
		return "", errBadContinuation
	}
	var c continuation
	if json.Unmarshal(payload, &c) != nil || c.After == "" || c.Filter != filterDigest(f) {
		return "", errBadContinuation
	}
	return c.After, nil
}
