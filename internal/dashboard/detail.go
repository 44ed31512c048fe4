package dashboard

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// detailPage is one request's page: every field, the approvals, the Graph or
// ARM steps and the whole history.
type detailPage struct {
	frame
	ID     string
	State  badge
	Source string
	// Alerts are shown above the fields: access that may linger, unfinished
	// work, a failure.
	Alerts    []alert
	Fields    []field
	Approvals []approvalRow
	// ApprovalsNote says why there are no approvals (auto-approved, PIM).
	ApprovalsNote string
	Steps         []entry
	StepsNote     string
	History       []entry
}

type alert struct {
	Tone  string // bad, busy, info
	Title string
	Text  string
	When  stamp // optional, after Title
}

// field is one line of the request's fields. Exactly one of Text, When,
// Badge, Sessions is the value; an empty value shows "—".
type field struct {
	Label string
	Text  string
	// Mono: an identifier, in a monospace font; Free: free text, its line
	// breaks kept.
	Mono, Free bool
	When       stamp
	// Rel is said after a time ("in 12m 30s", "2h 00m ago"); Note after any
	// value, Sub on a second line.
	Rel, Note, Sub string
	Badge          *badge
	Sessions       *sessionsView
}

type approvalRow struct {
	Who     person
	At      stamp
	Comment string
}

// entry is one history entry on the timeline.
type entry struct {
	When   stamp
	Label  string
	Tone   string
	Kind   string // "Graph", "ARM" or "" for a step of jitaccess's own record
	Step   bool   // a membership, role or session step, or one that had nothing to do
	Actor  text
	Detail cause
	Event  string
}

func (h *handler) serveDetail(w http.ResponseWriter, r *http.Request, f frame, id string, now time.Time) {
	notFound := func() {
		h.fail(w, r, f.Nonce, http.StatusNotFound, "No such request",
			"No request has the id "+strconv.Quote(clipRunes(id, 140))+". Search by requester or ticket to find it.")
	}
	if !access.ValidRequestID(id) {
		notFound()
		return
	}
	req, err := h.o.Store.GetRequest(r.Context(), id)
	switch {
	case fault.NotFound(err):
		notFound()
		return
	case fault.Unreadable(err):
		h.log.ErrorContext(r.Context(), "dashboard: stored request cannot be read", "requestId", id, "kind", "unreadable")
		h.fail(w, r, f.Nonce, http.StatusInternalServerError, "Request cannot be read",
			"Request "+strconv.Quote(id)+" is stored but cannot be read (damaged, or written by a newer version of jitaccess): "+
				"listings leave it out and nothing acts on it until an operator repairs or removes it. The log says what is wrong.")
		return
	case err != nil:
		h.storeFailed(w, r, f.Nonce, err)
		return
	case req == nil || req.State == access.Awaiting || req.ID != id:
		notFound()
		return
	}
	d := buildDetail(req, now)
	if !req.State.Ended() {
		f.Refresh = refreshSeconds(h.o.Refresh)
	}
	d.frame = f
	h.render(w, r, f.Nonce, "detail", d)
}

// rel says how far t is from now: "in 12m 30s" or "2h 00m ago".
func rel(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	if t.After(now) {
		return "in " + span(t.Sub(now))
	}
	return span(now.Sub(t)) + " ago"
}

func sourceWords(s access.Source) string {
	switch s {
	case access.SourcePIM:
		return "PIM portal (an activation observed in Entra audit events)"
	case access.SourceOutOfBand:
		return "out of band (a member added outside jitaccess and PIM, from Entra audit events)"
	}
	return "jitaccess (request events)"
}

func activationWords(r *access.Request) string {
	switch {
	case r.Activation == access.ActivationAzureRole:
		return "azure-role: an Azure role assignment at the profile's scope"
	case r.Activation == access.ActivationPIM:
		return "pim: an assignment of PIM for Groups, which owns the membership"
	case r.Source == access.SourceEvents || r.Source == "":
		return "membership: jitaccess adds and removes the group membership"
	}
	return "—"
}

// stepKind is who carries out a request's membership steps.
func stepKind(r *access.Request) string {
	if r.Activation == access.ActivationAzureRole {
		return "ARM"
	}
	return "Graph"
}

// entryLabel names a history entry for the timeline, with its tone.
func entryLabel(r *access.Request, typ string) (label, tone string, step bool) {
	role := r.Activation == access.ActivationAzureRole
	switch typ {
	case access.HRequested:
		return "requested", "info", false
	case access.HApproved:
		return "approved", "ok", false
	case access.HActivated:
		return "activated", "ok", false
	case access.HObserved:
		return "observed", "info", false
	case access.HRefused, access.HRejected, access.HDenied, access.HFailed, access.HOutOfBand:
		return typ, "bad", false
	case access.HExpired, access.HRevoked, access.HCancelled:
		return typ, "muted", false
	case access.HTimedOut:
		return "timed out", "muted", false
	case access.HMembershipAdded:
		if role {
			return "role assignment created", "step", true
		}
		return "membership added", "step", true
	case access.HMembershipRemoved:
		if role {
			return "role assignment deleted", "step", true
		}
		return "membership removed", "step", true
	case access.HSessionsRevoked:
		return "sign-in sessions revoked", "step", true
	case access.HNote:
		return "nothing to do", "note", true
	}
	return typ, "muted", false
}

func buildDetail(r *access.Request, now time.Time) *detailPage {
	d := &detailPage{ID: r.ID, State: stateBadge(r.State), Source: sourceLabel(r.Source)}

	// The history, and the steps among it.
	for _, h := range r.History {
		label, tone, step := entryLabel(r, h.Type)
		e := entry{When: newStampSecs(h.At), Label: label, Tone: tone, Step: step, Actor: newText(h.Actor),
			Detail: newCause(h.Detail), Event: h.EventID}
		if step && h.Type != access.HNote {
			e.Kind = stepKind(r)
			if h.Type == access.HSessionsRevoked {
				e.Kind = "Graph"
			}
		}
		d.History = append(d.History, e)
		if step {
			d.Steps = append(d.Steps, e)
		}
	}
	if len(d.Steps) == 0 {
		switch {
		case r.State == access.Pending:
			d.StepsNote = "None yet: nothing is changed before the approval."
		case r.Activation == access.ActivationPIM:
			d.StepsNote = "PIM for Groups carries out the membership; jitaccess records no membership step for it."
		case r.Source == access.SourcePIM:
			d.StepsNote = "None: PIM made the membership; jitaccess observed it."
		case r.ActivatedAt.IsZero() && r.State.Ended():
			d.StepsNote = "None: the request never became a grant."
		default:
			d.StepsNote = "None recorded."
		}
	}

	// Alerts.
	if !r.AccessGoneBy.IsZero() && r.AccessGoneBy.After(now) {
		why := "an access token issued before the end keeps its groups claim for its lifetime."
		if r.Activation == access.ActivationAzureRole {
			why = "a deleted role assignment may still authorize until the Azure RBAC caches expire."
		}
		d.Alerts = append(d.Alerts, alert{Tone: "busy", Title: "Access may linger until", When: newStampSecs(r.AccessGoneBy),
			Text: "(" + rel(r.AccessGoneBy, now) + "): the grant has ended, but " + why})
	}
	if w := r.Work; w != nil {
		d.Alerts = append(d.Alerts, alert{Tone: "busy", Title: workProblem(w) + ", since", When: newStampSecs(w.Since),
			Text: "(" + rel(w.Since, now) + "). The sweep carries on where it stopped."})
	}
	if r.State == access.Failed {
		d.Alerts = append(d.Alerts, alert{Tone: "bad", Title: "Failed:", Text: nonEmpty(r.Reason, "without a recorded reason")})
	}
	if c := r.Check; c != nil {
		d.Alerts = append(d.Alerts, alert{Tone: "info", Title: "Waiting for Graph to confirm what an audit record said, until",
			When: newStampSecs(c.Due)})
	}

	// Approvals.
	for _, a := range r.Approvals {
		who := person{Label: newText(nonEmpty(a.ApproverUPN, a.Approver))}
		if a.ApproverUPN != "" {
			who.ID = a.Approver
		}
		d.Approvals = append(d.Approvals, approvalRow{Who: who, At: newStampSecs(a.At), Comment: a.Comment})
	}
	if len(d.Approvals) == 0 {
		switch {
		case r.Source == access.SourcePIM:
			d.ApprovalsNote = "Activated in the PIM portal: PIM's own policy applied."
		case r.Source == access.SourceOutOfBand:
			d.ApprovalsNote = "None: the member was added outside jitaccess and PIM."
		case r.ApprovalsRequired == 0 && r.State != access.Rejected:
			d.ApprovalsNote = "None needed: the profile approves this request by itself."
		default:
			d.ApprovalsNote = "None accepted."
		}
	}

	// Fields, every one of the request.
	add := func(f field) { d.Fields = append(d.Fields, f) }
	add(field{Label: "Request id", Text: r.ID, Mono: true})
	st := stateBadge(r.State)
	stNote := ""
	if st.Hint != "" {
		stNote = "— " + st.Hint
	}
	add(field{Label: "State", Badge: &st, Note: stNote})
	add(field{Label: "Source", Text: sourceWords(r.Source)})
	req := field{Label: "Requester", Text: nonEmpty(r.RequesterUPN, r.Requester)}
	if r.RequesterUPN != "" && r.Requester != "" {
		req.Sub = "object id " + r.Requester
	}
	add(req)
	add(field{Label: "Profile", Text: r.Profile})
	add(field{Label: "Activation", Text: activationWords(r)})
	if r.Scope != "" || r.RoleDefinitionID != "" || r.Activation == access.ActivationAzureRole {
		add(field{Label: "Scope", Text: r.Scope, Mono: true})
		add(field{Label: "Role definition", Text: r.RoleDefinitionID, Mono: true})
	} else {
		add(field{Label: "Group", Text: r.GroupID, Mono: true, Note: "(object id)"})
	}
	dur := field{Label: "Duration"}
	if r.Duration > 0 {
		dur.Text, dur.Note = span(time.Duration(r.Duration)), "("+r.Duration.String()+")"
	}
	add(dur)
	add(field{Label: "Justification", Text: r.Justification, Free: true})
	add(field{Label: "Ticket", Text: r.Ticket, Free: true})
	appr := field{Label: "Approvals"}
	switch {
	case r.Source == access.SourceEvents || r.Source == "":
		appr.Text = strconv.Itoa(len(r.Approvals)) + " of " + strconv.Itoa(r.ApprovalsRequired) + " required"
		if r.ApprovalsRequired == 0 {
			appr.Text = "none required (approved by the profile)"
		}
	case r.Source == access.SourcePIM:
		appr.Text = "PIM (activated in the portal)"
	}
	add(appr)
	add(field{Label: "Requested", When: newStampSecs(r.RequestedAt), Rel: rel(r.RequestedAt, now)})
	if r.State == access.Pending || !r.ApprovalDeadline.IsZero() && r.ActivatedAt.IsZero() {
		f := field{Label: "Approval deadline", When: newStampSecs(r.ApprovalDeadline)}
		if r.State == access.Pending {
			f.Rel = rel(r.ApprovalDeadline, now)
		}
		add(f)
	}
	add(field{Label: "Activated", When: newStampSecs(r.ActivatedAt), Rel: rel(r.ActivatedAt, now)})
	ends := field{Label: "Ends", When: newStampSecs(r.EndsAt), Rel: rel(r.EndsAt, now)}
	if r.State.Ended() && !r.EndedAt.IsZero() {
		ends.Label, ends.Rel = "Was to end", ""
	}
	add(ends)
	add(field{Label: "Ended", When: newStampSecs(r.EndedAt), Rel: rel(r.EndedAt, now)})
	gone := field{Label: "Access gone by", When: newStampSecs(r.AccessGoneBy)}
	switch {
	case r.AccessGoneBy.IsZero() && r.State.Ended() && !r.ActivatedAt.IsZero():
		gone.Text = "not recorded"
	case r.AccessGoneBy.IsZero():
		gone.Note = "(set when a grant ends)"
	case r.AccessGoneBy.After(now):
		gone.Rel, gone.Note = rel(r.AccessGoneBy, now), "— access may linger until then"
	default:
		gone.Rel, gone.Note = rel(r.AccessGoneBy, now), "— the access is gone"
	}
	add(gone)
	s := sessionsOf(r)
	add(field{Label: "Sign-in sessions", Sessions: &s})
	add(field{Label: "Reason", Text: r.Reason, Free: true})
	if strings.TrimSpace(r.PIMNote) != "" {
		add(field{Label: "PIM note", Text: r.PIMNote, Free: true})
	}
	if w := r.Work; w != nil {
		add(field{Label: "Unfinished work", Text: workProblem(w), When: newStampSecs(w.Since), Rel: rel(w.Since, now)})
	}
	return d
}
