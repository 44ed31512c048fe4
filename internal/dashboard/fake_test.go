package dashboard

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// fakeLister is an in-memory broker.Lister: it filters by state, profile and
// requester, honours Limit and After (reporting Next when more remain) and
// records the filters.
type fakeLister struct {
	mu      sync.Mutex
	reqs    []*access.Request
	rejs    []access.Rejection
	err     error
	filters []broker.ListFilter
	rejLim  []int
	// noHistory lists requests without their history, as memstore and
	// tablestore do; gets counts GetRequest calls.
	noHistory bool
	gets      int
}

func (f *fakeLister) GetRequest(_ context.Context, id string) (*access.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return nil, f.err
	}
	for _, r := range f.reqs {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fault.Wrap(fault.ErrNotFound, "get", nil)
}

func (f *fakeLister) ListRequests(_ context.Context, lf broker.ListFilter) (broker.ListPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, lf)
	if f.err != nil {
		return broker.ListPage{}, f.err
	}
	// After is the number of matching requests already listed.
	skip := 0
	if lf.After != "" {
		n, err := strconv.Atoi(lf.After)
		if err != nil {
			return broker.ListPage{}, fault.Wrap(fault.ErrPermanent, "list", err)
		}
		skip = n
	}
	var out []*access.Request
	for _, r := range f.reqs {
		if lf.State != "" && r.State != lf.State || lf.Profile != "" && r.Profile != lf.Profile ||
			lf.Requester != "" && r.Requester != lf.Requester {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(out) == lf.Limit {
			n, _ := strconv.Atoi(cmp.Or(lf.After, "0"))
			return broker.ListPage{Items: out, Next: strconv.Itoa(n + lf.Limit)}, nil
		}
		if f.noHistory {
			c := *r
			c.History = nil
			r = &c
		}
		out = append(out, r)
	}
	return broker.ListPage{Items: out}, nil
}

func (f *fakeLister) RecentRejections(_ context.Context, limit int) ([]access.Rejection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rejLim = append(f.rejLim, limit)
	if f.err != nil {
		return nil, f.err
	}
	return f.rejs[:min(limit, len(f.rejs))], nil
}

func (f *fakeLister) Ping(context.Context) error { return f.err }

func (f *fakeLister) seen() []broker.ListFilter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.filters)
}

const (
	xss      = `<script>alert(1)</script><img src=x onerror=alert(1)>`
	xssText  = `&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;`
	n01      = "n01@contoso.example"
	p01      = "p01@contoso.example"
	n01ID    = "0d7a7d8e-6a8b-4f2b-9a59-1c3c0f6a0001"
	adminGrp = "7f1c2a4e-1111-4a4a-8b8b-aaaaaaaaaaaa"
)

var now0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var profiles = []access.Profile{{Name: "aks-admin"}, {Name: "aks-oncall"}}

// longUPN and longJust exceed MaxText without any space.
var (
	longUPN  = strings.Repeat("x", 150) + `"><b>@contoso.example`
	longJust = strings.Repeat("Z", 400)
)

func hist(at time.Time, typ, actor, detail string) access.HistoryEntry {
	return access.HistoryEntry{At: at, Type: typ, Actor: actor, Detail: detail}
}

// seed returns a store with one example of everything the page shows.
func seed(now time.Time) *fakeLister {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	appr := func(upn string, at time.Time) []access.Approval {
		return []access.Approval{{Approver: "0d7a7d8e-6a8b-4f2b-9a59-1c3c0f6a0002", ApproverUPN: upn, At: at}}
	}
	return &fakeLister{
		reqs: []*access.Request{
			{ID: "req-active-xss", Source: access.SourceEvents, State: access.Active, Requester: n01ID, RequesterUPN: n01,
				Profile: "aks-admin", GroupID: adminGrp, Duration: access.Duration(time.Hour), Justification: xss, Ticket: "INC-42",
				RequestedAt: ago(50 * time.Minute), ActivatedAt: ago(47*time.Minute + 30*time.Second), EndsAt: now.Add(12*time.Minute + 30*time.Second),
				Approvals: appr(p01, ago(47*time.Minute+30*time.Second)), ApprovalsRequired: 1, RevokeSessionsOnEnd: true},
			{ID: "req-long", State: access.Active, Requester: "id-long", RequesterUPN: longUPN, Profile: "aks-admin",
				Justification: longJust, RequestedAt: ago(2 * time.Hour), ActivatedAt: ago(time.Hour), EndsAt: now.Add(3*time.Hour + 5*time.Minute),
				Approvals: appr(p01, ago(time.Hour)), ApprovalsRequired: 1},
			{ID: "req-activating", State: access.Activating, Requester: "id-a", RequesterUPN: "alice@contoso.example", Profile: "aks-admin",
				Justification: "deploy hotfix", ActivatedAt: ago(10 * time.Second), EndsAt: now.Add(time.Hour - 10*time.Second),
				Approvals: appr(p01, ago(10*time.Second)), ApprovalsRequired: 1,
				Work: &access.Work{Goal: access.Active, Membership: access.OpAdd, Since: ago(10 * time.Second)}},
			{ID: "req-ending-stuck", State: access.Ending, Requester: "id-b", RequesterUPN: "bob@contoso.example", Profile: "aks-admin",
				ActivatedAt: ago(70 * time.Minute), EndsAt: ago(10 * time.Minute), EndedAt: ago(10 * time.Minute), ApprovalsRequired: 1,
				Approvals: appr(p01, ago(70*time.Minute)),
				Work:      &access.Work{Goal: access.Expired, Membership: access.OpRemove, Since: ago(10 * time.Minute), Attempts: 4}},
			{ID: "pim-1234", Source: access.SourcePIM, State: access.Active, Requester: "id-c", RequesterUPN: "carol@contoso.example", Profile: "aks-admin",
				ActivatedAt: ago(5 * time.Minute), EndsAt: now.Add(55 * time.Minute)},
			{ID: "req-oncall", State: access.Active, Requester: "id-d", RequesterUPN: "dave-oncall@contoso.example", Profile: "aks-oncall",
				Justification: "pager", ActivatedAt: ago(time.Minute), EndsAt: now.Add(29 * time.Minute), ApprovalsRequired: 0},
			{ID: "req-pending-1", State: access.Pending, Requester: "id-e", RequesterUPN: "erin@contoso.example", Profile: "aks-admin",
				Duration: access.Duration(2 * time.Hour), Justification: "rotate certificates", RequestedAt: ago(3*time.Minute + 20*time.Second),
				ApprovalsRequired: 2, Approvals: appr(p01, ago(time.Minute))},
			{ID: "req-pending-2", State: access.Pending, Requester: "id-f", Profile: "aks-admin",
				Justification: "upgrade", RequestedAt: ago(40 * time.Minute), ApprovalsRequired: 1},
			{ID: "req-failed", State: access.Failed, Requester: "id-g", RequesterUPN: "gina@contoso.example", Profile: "aks-admin",
				Reason: "Graph refused the membership change: Authorization_RequestDenied", EndedAt: ago(2 * time.Hour)},
			{ID: "req-expired", State: access.Expired, Requester: n01ID, RequesterUPN: n01, Profile: "aks-admin",
				ActivatedAt: ago(3 * time.Hour), EndedAt: ago(2 * time.Hour), RevokeSessionsOnEnd: true,
				History: []access.HistoryEntry{hist(ago(2*time.Hour), "expired", "jitaccess", ""), hist(ago(2*time.Hour), "membership-removed", "jitaccess", ""),
					hist(ago(2*time.Hour), "sessions-revoked", "jitaccess", "refresh tokens revoked")}},
			{ID: "req-revoked", State: access.Revoked, Requester: "id-h", RequesterUPN: "hank@contoso.example", Profile: "aks-admin",
				ActivatedAt: ago(time.Hour), EndedAt: ago(30 * time.Minute), Reason: "incident closed", RevokeSessionsOnEnd: true,
				History: []access.HistoryEntry{hist(ago(30*time.Minute), "revoked", p01, "incident closed"), hist(ago(30*time.Minute), "membership-removed", "jitaccess", ""),
					hist(ago(30*time.Minute), "sessions-revoked", "jitaccess", "")}},
			{ID: "req-timedout", State: access.TimedOut, Requester: "id-i", RequesterUPN: "ivan@contoso.example", Profile: "aks-admin",
				RequestedAt: ago(25 * time.Hour), EndedAt: ago(time.Hour), Reason: "no decision within the approval timeout"},
			{ID: "req-expired-old", State: access.Expired, Requester: "id-j", RequesterUPN: "old-expiry@contoso.example", Profile: "aks-admin",
				EndedAt: ago(72 * time.Hour)},
			{ID: "req-denied", State: access.Denied, Requester: "id-k", RequesterUPN: "kim@contoso.example", Profile: "aks-admin",
				EndedAt: ago(15 * time.Minute), Reason: "not during the freeze",
				History: []access.HistoryEntry{hist(ago(15*time.Minute), "denied", p01, "not during the freeze")}},
			{ID: "req-rejected", State: access.Rejected, Requester: "id-l", RequesterUPN: "guest_x@contoso.example", Profile: "aks-admin",
				EndedAt: ago(20 * time.Minute), Reason: "guest users cannot request access"},
			// Ended while another grant still held the membership: nothing
			// removed, so sessions were not revoked — the note says why.
			{ID: "req-kept", Source: access.SourceEvents, State: access.Expired, Requester: n01ID, RequesterUPN: n01, Profile: "aks-admin",
				GroupID: adminGrp, Duration: access.Duration(30 * time.Minute), Justification: "check the node pool", Ticket: "CHG-7",
				RequestedAt: ago(75 * time.Minute), ActivatedAt: ago(70 * time.Minute), EndsAt: ago(40 * time.Minute), EndedAt: ago(40 * time.Minute),
				AccessGoneBy: now.Add(50 * time.Minute), RevokeSessionsOnEnd: true, ApprovalsRequired: 1,
				Approvals: []access.Approval{{Approver: "0d7a7d8e-6a8b-4f2b-9a59-1c3c0f6a0002", ApproverUPN: p01, At: ago(70 * time.Minute), Comment: "ok <b>for</b> 30m"}},
				History: []access.HistoryEntry{
					{At: ago(75 * time.Minute), Type: "requested", Actor: n01, Detail: "PT30M", EventID: "evt-kept-1"},
					{At: ago(70 * time.Minute), Type: "approved", Actor: p01, Detail: "ok <b>for</b> 30m", EventID: "evt-kept-2"},
					hist(ago(70*time.Minute), "activated", "jitaccess", ""),
					hist(ago(70*time.Minute), "note", "jitaccess", "membership already held through grant req-active-xss"),
					hist(ago(40*time.Minute), "expired", "jitaccess", ""),
					hist(ago(40*time.Minute), "note", "jitaccess", access.DetailKeptPrefix+"req-active-xss"),
				}},
			// An azure-role grant revoked early: the role assignment made and
			// deleted through ARM, sessions revoked through Graph.
			{ID: "req-role", Source: access.SourceEvents, State: access.Revoked, Requester: "id-r", RequesterUPN: "rita@contoso.example",
				Profile: "aks-oncall", Activation: access.ActivationAzureRole, Duration: access.Duration(2 * time.Hour),
				Scope:            "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod",
				RoleDefinitionID: "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
				Justification:    "node drain", RequestedAt: ago(100 * time.Minute), ActivatedAt: ago(95 * time.Minute), EndsAt: now.Add(25 * time.Minute),
				EndedAt: ago(50 * time.Minute), AccessGoneBy: ago(40 * time.Minute), Reason: "done early", RevokeSessionsOnEnd: true,
				History: []access.HistoryEntry{
					hist(ago(100*time.Minute), "requested", "rita@contoso.example", ""),
					hist(ago(95*time.Minute), "activated", "jitaccess", ""),
					hist(ago(95*time.Minute), "membership-added", "jitaccess", "role assignment 3f0c-… created at the profile's scope"),
					hist(ago(50*time.Minute), "revoked", p01, "done early"),
					hist(ago(50*time.Minute), "membership-removed", "jitaccess", "role assignment deleted"),
					hist(ago(50*time.Minute), "sessions-revoked", "jitaccess", "refresh tokens revoked"),
				}},
			{ID: "oob-5678", Source: access.SourceOutOfBand, State: access.Active, Requester: "9f9f9f9f-0000-4000-8000-00000000beef", Profile: "aks-admin",
				GroupID: adminGrp, RequestedAt: ago(6 * time.Minute),
				History: []access.HistoryEntry{hist(ago(6*time.Minute), "outofband", "mallory@contoso.example", "added in the Entra portal")}},
			{ID: "oob-9999", Source: access.SourceOutOfBand, State: access.Revoked, Requester: "9f9f9f9f-0000-4000-8000-00000000cafe", Profile: "aks-admin",
				GroupID: adminGrp, RequestedAt: ago(26 * time.Hour), EndedAt: ago(26 * time.Hour)},
		},
		rejs: []access.Rejection{
			{At: ago(5 * time.Minute), EventID: "evt-77", Type: "jit.access.requested", Reason: "data is not valid JSON"},
			{At: ago(8 * time.Minute), EventID: "evt-78", Type: "jit.access.approved", RequestID: "req-unknown", Reason: "no such request"},
			{At: ago(48 * time.Hour), EventID: "evt-old", Reason: "ancient rejection"},
		},
	}
}
