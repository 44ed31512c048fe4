package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/api"
)

// DefaultWaitTimeout is how long `send --wait` waits for the outcome.
const DefaultWaitTimeout = time.Minute

// Polling of `send --wait`: quick at first (the sandbox answers within
// milliseconds), then no more than one read every maxPoll.
const (
	firstPoll = 200 * time.Millisecond
	maxPoll   = 2 * time.Second
)

// effectTypes are the history entries an event of each type records, with
// the event's asserted identity as their actor (internal/access/machine.go):
// the event applied, rejected (a requested event: invalid, or its requestId
// already used with other content) or refused (an action that was not
// allowed). Entries jitaccess records itself (activated, membership-added,
// failed...) carry the actor "jitaccess".
var effectTypes = map[string][]string{
	access.TypeRequested: {access.HRequested, access.HRejected},
	access.TypeApproved:  {access.HApproved, access.HRefused},
	access.TypeDenied:    {access.HDenied, access.HRefused},
	access.TypeCancelled: {access.HCancelled, access.HRefused},
	access.TypeRevoked:   {access.HRevoked, access.HRefused},
}

// waiter carries out `send --wait`.
//
// How the outcome is recognised: the read API shows a request's history
// (append-only) but not the CloudEvent id behind each entry. Before sending,
// the waiter reads the request and notes how many history entries it has
// (none when it does not exist yet); an entry caused by this event can only
// come after those. It then reads the request until a new entry appears
// whose type is one this event type records (effectTypes) and whose actor
// is the identity the event asserted (the history shows the user's UPN: an
// asserted UPN is compared without case; an asserted object id is matched
// through the UPN the request shows for it, as requester or approver, and
// else any actor but jitaccess itself). rejected and refused entries are
// the outcome at once; after any other, it waits until the request leaves
// its in-flight state (activating, ending) and reports failed when the
// request ended failed.
type waiter struct {
	api       *apiClient
	requestID string
	eventID   string
	typ       string
	actor     string
	timeout   time.Duration
	loc       *time.Location
	baseline  int
}

// readBaseline reads the request before the event is sent. An error means
// the outcome could not be followed: nothing is sent then.
func (w *waiter) readBaseline(ctx context.Context) error {
	a, err := w.api.getRequest(ctx, w.requestID)
	switch {
	case err != nil:
		return fmt.Errorf("the read API at %s does not answer (--wait needs it): %v", w.api.base, err)
	case a.Status == 404:
		w.baseline = 0
		return nil
	case a.denied():
		return fmt.Errorf("%s", a.deniedHint())
	case a.Status/100 != 2:
		return fmt.Errorf("the read API answered %s", a.message())
	}
	var r api.Request
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return fmt.Errorf("the read API's answer does not read as a request: %v", err)
	}
	w.baseline = len(r.History)
	return nil
}

// run polls until the outcome is known or the time is up; it prints the
// outcome as one line on stdout and returns the exit code.
func (w *waiter) run(ctx context.Context, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var (
		last     *api.Request
		matched  *api.HistoryEntry
		lastErr  string
		interval = firstPoll
	)
	for {
		a, err := w.api.getRequest(ctx, w.requestID)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				lastErr = fmt.Sprintf("the read API at %s does not answer: %v", w.api.base, err)
			}
		case a.denied():
			fmt.Fprintf(stderr, "jitaccess send: event %s was sent, but its outcome cannot be read: %s\n", w.eventID, a.deniedHint())
			return ExitFailed
		case a.Status == 404:
			lastErr = ""
		case a.Status/100 != 2:
			lastErr = "the read API answered " + a.message()
		default:
			var r api.Request
			if err := json.Unmarshal(a.Body, &r); err != nil {
				lastErr = fmt.Sprintf("the read API's answer does not read as a request: %v", err)
				break
			}
			last, lastErr = &r, ""
		}
		if last != nil {
			if matched == nil {
				matched = findEffect(last, w.baseline, w.typ, w.actor)
			}
			if matched != nil {
				if code, line, done := w.judge(last, matched); done {
					fmt.Fprintln(stdout, line)
					return code
				}
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if lastErr != "" {
				fmt.Fprintf(stderr, "jitaccess send: %s\n", lastErr)
			}
			fmt.Fprintln(stdout, w.timeoutLine(last, matched))
			return ExitTimeout
		case <-t.C:
		}
		interval = min(interval*3/2, maxPoll)
	}
}

// judge turns the entry this event recorded, and the request as it is now,
// into the outcome; done is false while the request is in flight.
func (w *waiter) judge(r *api.Request, e *api.HistoryEntry) (code int, line string, done bool) {
	switch e.Type {
	case access.HRejected:
		return ExitRejected, fmt.Sprintf("rejected: %s; request %s is %s", orDash(clean(e.Detail)), clean(r.ID), clean(r.State)), true
	case access.HRefused:
		return ExitRefused, fmt.Sprintf("refused: %s; request %s is %s", orDash(clean(e.Detail)), clean(r.ID), clean(r.State)), true
	}
	if inFlight(r.State) {
		return 0, "", false
	}
	if r.State == string(access.Failed) {
		return ExitRequestFailed, fmt.Sprintf("failed: request %s failed: %s", clean(r.ID), orDash(clean(r.Reason))), true
	}
	return ExitOK, "applied: " + w.summary(r), true
}

// summary says where a request stands, on one line.
func (w *waiter) summary(r *api.Request) string {
	s := fmt.Sprintf("request %s is %s", clean(r.ID), clean(r.State))
	switch {
	case r.State == string(access.Pending):
		if !r.ApprovalDeadline.IsZero() {
			s += ", approval deadline " + showTime(r.ApprovalDeadline, w.loc)
		}
	case r.State == string(access.Active):
		if !r.EndsAt.IsZero() {
			s += " until " + showTime(r.EndsAt, w.loc)
		}
	default:
		if r.Reason != "" {
			s += ": " + clean(r.Reason)
		}
		if !r.AccessGoneBy.IsZero() {
			s += "; access gone by " + showTime(r.AccessGoneBy, w.loc)
		}
	}
	return s
}

func (w *waiter) timeoutLine(last *api.Request, matched *api.HistoryEntry) string {
	after := fmt.Sprintf("after %s", w.timeout)
	switch {
	case matched != nil:
		return fmt.Sprintf("timeout: event %s was applied (%s), but request %s is still %s %s: its Graph or ARM work is under way or being retried; see 'jitaccess get %s'",
			w.eventID, clean(matched.Type), clean(last.ID), clean(last.State), after, w.requestID)
	case last != nil:
		return fmt.Sprintf("timeout: request %s (%s) shows no effect of event %s %s: not processed yet, or a duplicate of an earlier event (which changes nothing), or one past the request's bound of recorded refusals (see the dashboard's rejections)",
			clean(last.ID), clean(last.State), w.eventID, after)
	case w.typ == access.TypeRequested:
		return fmt.Sprintf("timeout: request %s is not visible %s: event %s is not processed yet", w.requestID, after, w.eventID)
	}
	return fmt.Sprintf("timeout: request %s is not visible %s: event %s is not processed yet, or is held until its request arrives (for up to 24 h)",
		w.requestID, after, w.eventID)
}

// findEffect returns the first history entry after the baseline that this
// event recorded (see waiter), or nil.
func findEffect(r *api.Request, baseline int, typ, asserted string) *api.HistoryEntry {
	if baseline < 0 || baseline > len(r.History) {
		// The history is append-only; a shorter one is another request's
		// (deleted and made again): look at all of it.
		baseline = 0
	}
	want := effectTypes[typ]
	for i := baseline; i < len(r.History); i++ {
		h := &r.History[i]
		for _, t := range want {
			if h.Type == t && actorMatches(h.Actor, asserted, r) {
				return h
			}
		}
	}
	return nil
}

// actorMatches reports whether a history entry's actor can be the asserted
// identity: the history records the UPN when Entra knows the user, else the
// object id, else the identity as asserted (access.Actor.Label).
func actorMatches(actor, asserted string, r *api.Request) bool {
	asserted = strings.TrimSpace(asserted)
	if strings.EqualFold(actor, asserted) {
		return true
	}
	if strings.Contains(asserted, "@") {
		return false
	}
	// An object id: the entry shows the user's UPN, which the request
	// shows beside the id when the user is its requester or an approver.
	var upn string
	if strings.EqualFold(r.Requester, asserted) {
		upn = r.RequesterUPN
	}
	for _, a := range r.Approvals {
		if strings.EqualFold(a.Approver, asserted) && a.ApproverUPN != "" {
			upn = a.ApproverUPN
		}
	}
	if upn != "" {
		return strings.EqualFold(actor, upn)
	}
	return actor != access.System
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseTimeout reads --timeout: a Go duration (90s, 2m) or ISO 8601 (PT2M).
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return DefaultWaitTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if d, err = access.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--timeout %q is not a duration (e.g. 90s, 5m or PT5M)", clip(s, 40))
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--timeout must be positive")
	}
	return d, nil
}
