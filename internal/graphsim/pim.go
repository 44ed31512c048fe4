package graphsim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// PIM for Groups (docs/design.md, Operations):
//
//	POST /identityGovernance/privilegedAccess/group/assignmentScheduleRequests   adminAssign / adminRemove, accessId member
//	GET  /identityGovernance/privilegedAccess/group/assignmentScheduleInstances?$filter=groupId eq '..' and principalId eq '..' and accessId eq 'member'
//
// A group must be managed by PIM (SetPIMPolicy) or requests are refused.
// adminAssign makes the principal a direct member (unless it already was)
// and PIM removes that membership at the end: on ExpirePIM, or lazily when
// the instances are read or a request arrives after the end (Options.Now).

// PIM error texts (codes and messages as Graph answers them; see
// handlers/testdata/audit/SOURCES.md and the graph package).
const (
	MsgRoleAssignmentExists       = "The Role assignment already exists."
	MsgRoleAssignmentDoesNotExist = "The Role assignment does not exist."
	MsgInvalidRoleAssignment      = "The role assignment request is invalid."
)

// PIMPolicy is a group's PIM settings for active member assignments.
type PIMPolicy struct {
	// MaxDuration of an active assignment (0: no limit; a permanent
	// assignment is then allowed too).
	MaxDuration time.Duration
	// RequireJustification refuses requests without one (JustificationRule).
	RequireJustification bool
}

// PIMAssignment is an active PIM membership.
type PIMAssignment struct {
	ID          string // assignment schedule id
	RequestID   string
	GroupID     string
	PrincipalID string
	Start       time.Time
	End         time.Time // zero: permanent
	// AddedMember: the assignment made the principal a direct member (it was
	// not one), so its end removes the membership.
	AddedMember   bool
	Justification string
	// Activation: made by the user (ActivatePIM), not by an administrator.
	Activation bool
}

type pimKey struct{ group, user string }

// SetPIMPolicy puts group under PIM with policy p (replacing any earlier).
func (s *Sim) SetPIMPolicy(group string, p PIMPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pimPolicies[norm(group)] = p
}

// PIMAssignments returns the active assignments, sorted by group then user.
func (s *Sim) PIMAssignments() []PIMAssignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PIMAssignment, 0, len(s.pim))
	for _, a := range s.pim {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GroupID != out[j].GroupID {
			return out[i].GroupID < out[j].GroupID
		}
		return out[i].PrincipalID < out[j].PrincipalID
	})
	return out
}

// ExpirePIM ends every assignment whose end is at or before now, as PIM
// would: the membership it added is removed (recorded in the audit log as
// PIM's). It returns how many ended. Tests call it to drive the end
// deterministically.
func (s *Sim) ExpirePIM(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expireLocked(now)
}

func (s *Sim) expireLocked(now time.Time) int {
	n := 0
	for k, a := range s.pim {
		if a.End.IsZero() || a.End.After(now) {
			continue
		}
		delete(s.pim, k)
		s.logPIM(a.End, k, a)
		n++
		if a.AddedMember && s.t.members[a.GroupID][a.PrincipalID] {
			delete(s.t.members[a.GroupID], a.PrincipalID)
			s.logMember(a.End, a.GroupID, a.PrincipalID, true)
			s.auditMembership(a.End, false, a.GroupID, a.PrincipalID, pimActor)
		}
		s.auditPIM(a.End, auditPIMExpired, a, actor{userID: azurePIMUserID, userName: "Azure AD PIM"})
	}
	return n
}

// ActivatePIM simulates a user's own activation in the portal (selfActivate
// approved): the user becomes a member for d, and the audit log gets PIM's
// records. It returns the request id; "" when the group is not under PIM,
// the user or group is unknown, or an assignment is already active.
func (s *Sim) ActivatePIM(group, user string, d time.Duration, justification string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	s.expireLocked(now)
	g, u := norm(group), norm(user)
	if _, ok := s.pimPolicies[g]; !ok || s.t.groups[g] == nil || s.t.users[u] == nil || s.pim[pimKey{g, u}] != nil {
		return ""
	}
	a := s.assignLocked(now, g, u, d, justification, actor{userID: u, upn: s.t.users[u].UPN})
	a.Activation = true
	s.auditPIM(now, auditPIMActivated, a, actor{userID: u, upn: s.t.users[u].UPN})
	return a.RequestID
}

// DeactivatePIM simulates the user ending an activation early; false when
// there is none.
func (s *Sim) DeactivatePIM(group, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	s.expireLocked(now)
	a := s.pim[pimKey{norm(group), norm(user)}]
	if a == nil {
		return false
	}
	s.endLocked(now, a)
	s.auditPIM(now, auditPIMDeactivated, a, actor{userID: a.PrincipalID, upn: s.t.users[a.PrincipalID].UPN})
	return true
}

func (s *Sim) assignLocked(now time.Time, g, u string, d time.Duration, justification string, by actor) *PIMAssignment {
	a := &PIMAssignment{ID: simkit.NewID(), RequestID: simkit.NewID(), GroupID: g, PrincipalID: u, Start: now, Justification: justification}
	if d > 0 {
		a.End = now.Add(d)
	}
	if !s.t.members[g][u] {
		s.t.members[g][u] = true
		a.AddedMember = true
		s.logMember(now, g, u, false)
		s.auditMembership(now, true, g, u, pimActor)
	}
	s.pim[pimKey{g, u}] = a
	s.logPIM(now, pimKey{g, u}, nil)
	return a
}

func (s *Sim) endLocked(now time.Time, a *PIMAssignment) {
	delete(s.pim, pimKey{a.GroupID, a.PrincipalID})
	s.logPIM(now, pimKey{a.GroupID, a.PrincipalID}, a)
	if a.AddedMember && s.t.members[a.GroupID][a.PrincipalID] {
		delete(s.t.members[a.GroupID], a.PrincipalID)
		s.logMember(now, a.GroupID, a.PrincipalID, true)
		s.auditMembership(now, false, a.GroupID, a.PrincipalID, pimActor)
	}
}

var isoDurRE = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration reads PnDTnHnMn.nS; "P" and "PT" alone are invalid.
func parseISODuration(s string) (time.Duration, bool) {
	m := isoDurRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, true
}

type scheduleRequestIn struct {
	Action        string `json:"action"`
	AccessID      string `json:"accessId"`
	PrincipalID   string `json:"principalId"`
	GroupID       string `json:"groupId"`
	Justification string `json:"justification"`
	ScheduleInfo  *struct {
		StartDateTime *time.Time `json:"startDateTime"`
		Expiration    *struct {
			Type        string     `json:"type"`
			Duration    string     `json:"duration"`
			EndDateTime *time.Time `json:"endDateTime"`
		} `json:"expiration"`
	} `json:"scheduleInfo"`
}

func policyFailed(w http.ResponseWriter, r *http.Request, rule string) {
	writeError(w, r, http.StatusBadRequest, "RoleAssignmentRequestPolicyValidationFailed",
		`The following policy rules failed: ["`+rule+`"]`, 0)
}

func (s *Sim) pimScheduleRequest(w http.ResponseWriter, r *http.Request, body []byte) {
	var in scheduleRequestIn
	if len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, &in) != nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	if !strings.EqualFold(in.AccessID, "member") || in.PrincipalID == "" || in.GroupID == "" {
		writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequest", MsgInvalidRoleAssignment, 0)
		return
	}
	by := callerOf(r)
	// The answer is written after the lock is released: the call record's
	// status is set under the same lock when the header is written.
	buf := &bufWriter{h: w.Header()}
	defer buf.replay(w)
	w = buf
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UTC()
	s.expireLocked(now)
	g, u := norm(in.GroupID), norm(in.PrincipalID)
	pol, managed := s.pimPolicies[g]
	switch {
	case s.t.groups[g] == nil:
		notFound(w, r, in.GroupID)
		return
	case s.t.users[u] == nil:
		notFound(w, r, in.PrincipalID)
		return
	case !managed:
		writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequest", MsgInvalidRoleAssignment, 0)
		return
	}
	cur := s.pim[pimKey{g, u}]
	switch in.Action {
	case "adminAssign":
		var d time.Duration
		exp := ""
		if in.ScheduleInfo != nil && in.ScheduleInfo.Expiration != nil {
			exp = in.ScheduleInfo.Expiration.Type
		}
		switch exp {
		case "afterDuration":
			var ok bool
			d, ok = parseISODuration(in.ScheduleInfo.Expiration.Duration)
			if !ok || d <= 0 {
				writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequestSchedule",
					"The request schedule is invalid: duration '"+in.ScheduleInfo.Expiration.Duration+"'.", 0)
				return
			}
		case "afterDateTime":
			if in.ScheduleInfo.Expiration.EndDateTime == nil || !in.ScheduleInfo.Expiration.EndDateTime.After(now) {
				writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequestSchedule", "The request schedule is invalid.", 0)
				return
			}
			d = in.ScheduleInfo.Expiration.EndDateTime.Sub(now)
		case "noExpiration", "":
			if pol.MaxDuration > 0 {
				policyFailed(w, r, "ExpirationRule")
				return
			}
		default:
			writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequestSchedule", "The request schedule is invalid.", 0)
			return
		}
		if pol.MaxDuration > 0 && d > pol.MaxDuration {
			policyFailed(w, r, "ExpirationRule")
			return
		}
		if pol.RequireJustification && strings.TrimSpace(in.Justification) == "" {
			policyFailed(w, r, "JustificationRule")
			return
		}
		if cur != nil {
			writeError(w, r, http.StatusBadRequest, "RoleAssignmentExists", MsgRoleAssignmentExists, 0)
			return
		}
		a := s.assignLocked(now, g, u, d, in.Justification, by)
		s.auditPIM(now, auditPIMAssigned, a, by)
		writeJSON(w, http.StatusCreated, scheduleRequestOut(a, "adminAssign", "Provisioned", now, in))
	case "adminRemove":
		if cur == nil {
			writeError(w, r, http.StatusBadRequest, "RoleAssignmentDoesNotExist", MsgRoleAssignmentDoesNotExist, 0)
			return
		}
		s.endLocked(now, cur)
		s.auditPIM(now, auditPIMRemoved, cur, by)
		out := scheduleRequestOut(cur, "adminRemove", "Revoked", now, in)
		out["id"] = simkit.NewID()
		writeJSON(w, http.StatusCreated, out)
	default:
		writeError(w, r, http.StatusBadRequest, "InvalidRoleAssignmentRequest", MsgInvalidRoleAssignment, 0)
	}
}

func scheduleRequestOut(a *PIMAssignment, action, status string, now time.Time, in scheduleRequestIn) map[string]any {
	exp := map[string]any{"type": "noExpiration", "endDateTime": nil, "duration": nil}
	if !a.End.IsZero() {
		exp = map[string]any{"type": "afterDuration", "endDateTime": nil, "duration": isoDuration(a.End.Sub(a.Start))}
	}
	var just any
	if in.Justification != "" {
		just = in.Justification
	}
	return map[string]any{
		"@odata.context":    "https://graph.microsoft.com/v1.0/$metadata#identityGovernance/privilegedAccess/group/assignmentScheduleRequests/$entity",
		"id":                a.RequestID,
		"status":            status,
		"completedDateTime": now.Format(time.RFC3339Nano),
		"createdDateTime":   now.Format(time.RFC3339Nano),
		"approvalId":        nil,
		"customData":        nil,
		"createdBy":         map[string]any{"application": nil, "device": nil, "user": nil},
		"action":            action,
		"isValidationOnly":  false,
		"justification":     just,
		"scheduleInfo": map[string]any{
			"startDateTime": a.Start.Format(time.RFC3339Nano),
			"recurrence":    nil,
			"expiration":    exp,
		},
		"ticketInfo":       map[string]any{"ticketNumber": nil, "ticketSystem": nil},
		"accessId":         "member",
		"principalId":      a.PrincipalID,
		"groupId":          a.GroupID,
		"targetScheduleId": a.ID,
	}
}

// isoDuration renders d as PTnS (whole seconds, as Graph echoes it).
func isoDuration(d time.Duration) string {
	return "PT" + strconv.FormatInt(int64(d/time.Second), 10) + "S"
}

var filterRE = regexp.MustCompile(`(?i)(groupId|principalId|accessId)\s+eq\s+'([^']*)'`)

func (s *Sim) pimInstances(w http.ResponseWriter, r *http.Request) {
	f := r.URL.Query().Get("$filter")
	want := map[string]string{}
	for _, m := range filterRE.FindAllStringSubmatch(f, -1) {
		want[strings.ToLower(m[1])] = strings.ToLower(m[2])
	}
	if f != "" && len(want) == 0 {
		writeError(w, r, http.StatusBadRequest, "BadRequest", "Invalid filter clause", 0)
		return
	}
	var vals []map[string]any
	s.locked(func() {
		s.expireLocked(s.opts.Now().UTC())
		for _, a := range s.readPIM() {
			if (want["groupid"] != "" && want["groupid"] != a.GroupID) || (want["principalid"] != "" && want["principalid"] != a.PrincipalID) ||
				(want["accessid"] != "" && want["accessid"] != "member") {
				continue
			}
			var end any
			if !a.End.IsZero() {
				end = a.End.Format(time.RFC3339Nano)
			}
			typ := "assigned"
			if a.Activation {
				typ = "activated"
			}
			vals = append(vals, map[string]any{
				"id": a.ID + "_" + a.PrincipalID, "startDateTime": a.Start.Format(time.RFC3339Nano), "endDateTime": end,
				"accessId": "member", "principalId": a.PrincipalID, "groupId": a.GroupID,
				"memberType": "direct", "assignmentType": typ, "assignmentScheduleId": a.ID,
			})
		}
	})
	if vals == nil {
		vals = []map[string]any{}
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i]["id"].(string) < vals[j]["id"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identityGovernance/privilegedAccess/group/assignmentScheduleInstances",
		"value":          vals,
	})
}

// ---- caller identity (from the bearer token, unverified, for audit records)

type callerKey struct{}

type actor struct {
	appID, objectID, appName string // an application
	userID, upn, userName    string // a user
}

func withCaller(r *http.Request, token string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, tokenActor(token)))
}

func callerOf(r *http.Request) actor {
	a, _ := r.Context().Value(callerKey{}).(actor)
	return a
}

// tokenActor reads appid (or azp) and oid from a JWT without verifying it.
func tokenActor(tok string) actor {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return actor{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return actor{}
	}
	var cl struct {
		AppID, Azp, Oid, AppDisplayName string
	}
	if json.Unmarshal(raw, &cl) != nil {
		return actor{}
	}
	a := actor{appID: strings.ToLower(cl.AppID), objectID: strings.ToLower(cl.Oid), appName: cl.AppDisplayName}
	if a.appID == "" {
		a.appID = strings.ToLower(cl.Azp)
	}
	if a.appName == "" && a.appID != "" {
		a.appName = "jitaccess"
	}
	return a
}

// bufWriter holds an answer until replay (header map shared with the real
// writer).
type bufWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (b *bufWriter) Header() http.Header { return b.h }
func (b *bufWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufWriter) replay(w http.ResponseWriter) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
