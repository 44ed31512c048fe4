package dashboard

import (
	"strings"

	"github.com/jitaccess/jitaccess/internal/access"
)

// cause is why something was not needed, as the history says it: an
// explanation and the grants it names, which are linked.
type cause struct {
	Text string
	IDs  []ref
}

// Empty reports whether there is no cause to show.
func (c cause) Empty() bool { return c.Text == "" && len(c.IDs) == 0 }

// String is the cause as plain text.
func (c cause) String() string {
	ids := make([]string, 0, len(c.IDs))
	for _, r := range c.IDs {
		ids = append(ids, r.ID)
	}
	return c.Text + strings.Join(ids, ", ")
}

// grantListPrefixes begin the history details that end with a list of
// grant ids ("membership kept: still granted by a, b").
var grantListPrefixes = []string{
	access.DetailKeptPrefix,
	"membership already held through jitaccess's grant ",
	"membership already held through grant ",
}

// newCause makes a cause of a history detail; a detail that ends with a list
// of valid request ids after one of grantListPrefixes gets them as links.
func newCause(detail string) cause {
	detail = strings.ToValidUTF8(strings.TrimSpace(detail), "\uFFFD")
	for _, p := range grantListPrefixes {
		rest, ok := strings.CutPrefix(detail, p)
		if !ok || rest == "" {
			continue
		}
		var ids []ref
		for id := range strings.SplitSeq(rest, ", ") {
			if !access.ValidRequestID(id) {
				return cause{Text: detail}
			}
			ids = append(ids, newRef(id))
		}
		return cause{Text: p, IDs: ids}
	}
	return cause{Text: detail}
}

// sessionsView is what a page says about a request's sign-in sessions: what
// happened (Text) and, when they were not revoked because nothing was
// removed, the cause the history records.
type sessionsView struct {
	Text  string
	Cause cause
}

// sessionsOf says what happened to the requester's sign-in sessions.
func sessionsOf(r *access.Request) sessionsView {
	for _, h := range r.History {
		if h.Type == access.HSessionsRevoked {
			return sessionsView{Text: "revoked"}
		}
	}
	switch {
	case r.State == access.TimedOut || r.ActivatedAt.IsZero() && r.State != access.Activating:
		return sessionsView{Text: "—"}
	case !r.RevokeSessionsOnEnd:
		return sessionsView{Text: "not revoked (profile does not ask)"}
	case r.State == access.Active || r.State == access.Activating:
		return sessionsView{Text: "to be revoked when the grant ends"}
	}
	for _, h := range r.History {
		if h.Type == access.HMembershipRemoved {
			return sessionsView{Text: "not revoked yet"}
		}
	}
	if r.State == access.Ending {
		return sessionsView{Text: "not revoked yet"}
	}
	return sessionsView{Text: "not needed", Cause: notRemovedCause(r)}
}

// notRemovedCause is why an ended grant removed nothing: the newest note of
// its history (the end's, e.g. "membership kept: still granted by …", comes
// after any the activation recorded), else PIM mode's note, else the plain
// fact.
func notRemovedCause(r *access.Request) cause {
	for i := len(r.History) - 1; i >= 0; i-- {
		if h := r.History[i]; h.Type == access.HNote && strings.TrimSpace(h.Detail) != "" {
			return newCause(h.Detail)
		}
	}
	switch {
	case strings.TrimSpace(r.PIMNote) != "":
		return newCause(r.PIMNote)
	case r.Activation == access.ActivationAzureRole:
		return cause{Text: "no role assignment was removed"}
	}
	return cause{Text: "no membership was removed"}
}
