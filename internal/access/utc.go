package access

import "time"

// A store gives back every time of what it decodes in UTC, whatever zone it
// was saved in. These are the one list of a request's and a ledger's times
// that both stores use; a test (utc_test.go) finds the times by reflection
// and fails when a field added to the types is missing here.

// InUTC puts every time r holds in UTC; zero times stay zero.
func (r *Request) InUTC() {
	for _, t := range []*time.Time{&r.RequestedAt, &r.ApprovalDeadline, &r.ActivatedAt, &r.EndsAt, &r.EndedAt, &r.DueAt, &r.AccessGoneBy} {
		*t = utc(*t)
	}
	for i := range r.Approvals {
		r.Approvals[i].At = utc(r.Approvals[i].At)
	}
	for i := range r.History {
		r.History[i].At = utc(r.History[i].At)
	}
	if r.Work != nil {
		r.Work.Since = utc(r.Work.Since)
	}
	if r.Check != nil {
		r.Check.Since, r.Check.Due = utc(r.Check.Since), utc(r.Check.Due)
	}
	for i := range r.Parked {
		r.Parked[i].Received = utc(r.Parked[i].Received)
		r.Parked[i].Event.Time = utc(r.Parked[i].Event.Time)
	}
	for i := range r.Outbox {
		r.Outbox[i].At = utc(r.Outbox[i].At)
	}
}

// InUTC puts every time l holds in UTC; zero times stay zero.
func (l *Ledger) InUTC() {
	l.LastWrite, l.ClaimedAt = utc(l.LastWrite), utc(l.ClaimedAt)
}

// utc is t in UTC, and the zero time for the zero time (whose UTC() is
// not time.Time{} when it carries a location).
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
