package graphsim

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// What every call goes through (record, authenticate, injected faults,
// quota, body decoding) and the routing to the endpoints.

const maxBody = 1 << 20

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	path := strings.TrimPrefix(r.URL.Path, BasePath)
	c := Call{
		Method:          r.Method,
		Path:            path,
		RawPath:         r.URL.EscapedPath(),
		Query:           r.URL.RawQuery,
		Time:            s.opts.Now(),
		ContentEncoding: r.Header.Get("Content-Encoding"),
	}
	if len(raw) > 0 {
		c.Body = raw
	}
	idx := s.log.Record(c)
	sw := &simkit.StatusWriter{ResponseWriter: w, Set: func(status int, fault string) { s.setStatus(idx, status, fault) }}

	reqID := simkit.NewID()
	h := w.Header()
	h.Set("request-id", reqID)
	if cid := r.Header.Get("client-request-id"); cid != "" {
		h.Set("client-request-id", cid)
	} else {
		h.Set("client-request-id", reqID)
	}

	if !strings.HasPrefix(r.URL.Path, BasePath+"/") {
		writeError(sw, r, http.StatusNotFound, "BadRequest", "Invalid version: "+strings.TrimPrefix(r.URL.Path, "/"), 0)
		return
	}

	delay, hit := s.faults.Pick(r.Method, path)
	if delay > 0 {
		sw.Fault = simkit.FaultDelay
		s.setStatus(idx, 0, simkit.FaultDelay)
		if !s.srv.Wait(r.Context(), delay) {
			return
		}
	}

	// Authentication.
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(sw, r, http.StatusUnauthorized, "InvalidAuthenticationToken", MsgEmptyToken, 0)
		return
	}
	if s.opts.Verify != nil && !s.opts.Verify(strings.TrimSpace(token)) {
		writeError(sw, r, http.StatusUnauthorized, "InvalidAuthenticationToken", MsgInvalidToken, 0)
		return
	}

	r = withCaller(r, strings.TrimSpace(token))
	if hit != nil {
		switch hit.Kind {
		case simkit.FaultReset:
			s.setStatus(idx, 0, simkit.FaultReset)
			simkit.ResetConn(w)
			return
		case simkit.FaultFail:
			sw.Fault = simkit.FaultFail
			writeError(sw, r, hit.Status, hit.Code, hit.Message, hit.RetryAfter)
			return
		}
	}
	if q := s.admit(idx, callerOf(r).appID, r.Method, path, r.URL.Query()); q.metered {
		if q.used > 0.8 {
			h.Set("x-ms-throttle-limit-percentage", strconv.FormatFloat(min(q.used, 1.8), 'f', 1, 64))
		}
		if q.retryAfter > 0 {
			sw.Fault = faultQuota
			h.Set("x-ms-throttle-scope", q.scope)
			h.Set("x-ms-throttle-information", q.info)
			code, msg := errorText(http.StatusTooManyRequests)
			writeError(sw, r, http.StatusTooManyRequests, code, msg, q.retryAfter)
			return
		}
		h.Set("x-ms-resource-unit", strconv.Itoa(q.units))
	}

	body, err := decodeBody(r.Header.Get("Content-Encoding"), raw)
	if err != nil {
		writeError(sw, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	s.route(sw, r, path, body)
}

// decodeBody undoes Content-Encoding: gzip. A body announced as gzip that is
// not gzip (or an empty one) is an error, as on Graph.
func decodeBody(enc string, raw []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		out, err := io.ReadAll(io.LimitReader(zr, maxBody))
		if err != nil {
			return nil, err
		}
		return out, zr.Close()
	default:
		return nil, fmt.Errorf("unsupported content encoding %q", enc)
	}
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	n := len(seg)
	switch {
	case n == 2 && seg[0] == "users" && r.Method == http.MethodGet:
		s.getUser(w, r, seg[1])
	case n == 3 && seg[0] == "users" && seg[2] == "checkMemberGroups" && r.Method == http.MethodPost:
		s.checkMemberGroups(w, r, seg[1], body)
	case n == 3 && seg[0] == "users" && seg[2] == "revokeSignInSessions" && r.Method == http.MethodPost:
		s.revoke(w, r, seg[1])
	case n == 2 && seg[0] == "groups" && r.Method == http.MethodGet:
		s.getGroup(w, r, seg[1])
	case n == 3 && seg[0] == "groups" && seg[2] == "members" && r.Method == http.MethodGet:
		s.listMembers(w, r, seg[1])
	case n == 4 && seg[0] == "groups" && seg[2] == "members" && seg[3] == "$ref" && r.Method == http.MethodPost:
		s.addMemberRef(w, r, seg[1], body)
	case n == 5 && seg[0] == "groups" && seg[2] == "members" && seg[4] == "$ref" && r.Method == http.MethodDelete:
		s.removeMemberRef(w, r, seg[1], seg[3])
	case n == 4 && seg[0] == "identityGovernance" && seg[1] == "privilegedAccess" && seg[2] == "group" &&
		seg[3] == "assignmentScheduleRequests" && r.Method == http.MethodPost:
		s.pimScheduleRequest(w, r, body)
	case n == 4 && seg[0] == "identityGovernance" && seg[1] == "privilegedAccess" && seg[2] == "group" &&
		seg[3] == "assignmentScheduleInstances" && r.Method == http.MethodGet:
		s.pimInstances(w, r)
	default:
		writeError(w, r, http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+seg[n-1]+"'.", 0)
	}
}
