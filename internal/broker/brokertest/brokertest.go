// Package brokertest provides test doubles for the broker's ports: Dir, an
// in-memory directory (users, enabled and guest flags, nested groups, direct
// memberships) that implements broker.Directory with call counters, a record
// of every write and injectable errors per method, and an optional replica
// lag of its reads (SetReplicaLag, lag.go); and Clock, a settable clock.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
	"github.com/jitaccess/jitaccess/internal/seed"
)

// Method names for Fail, SetHook and Calls.
const (
	MLookupUser     = "LookupUser"
	MMemberOfAny    = "MemberOfAny"
	MAddMember      = "AddMember"
	MRemoveMember   = "RemoveMember"
	MRevokeSessions = "RevokeSessions"
)

// Write is one successful change the directory carried out.
type Write struct {
	Op      string // MAddMember, MRemoveMember or MRevokeSessions
	GroupID string // empty for MRevokeSessions
	UserID  string
	// Changed: the membership really changed (false for "already a member" /
	// "not a member").
	Changed bool
}

// Dir is an in-memory tenant. It is safe for concurrent use.
type Dir struct {
	mu      sync.Mutex
	users   map[string]broker.User // by lower-case id
	byUPN   map[string]string      // lower-case UPN → id
	members map[string]map[string]bool
	gate    gate // Fail, SetHook, Calls
	writes  []Write

	pimEnds    map[pimKey]time.Time
	pimRefusal string

	rep replicas // lag.go
}

// NewDir returns an empty tenant.
func NewDir() *Dir {
	return &Dir{
		users:   map[string]broker.User{},
		byUPN:   map[string]string{},
		members: map[string]map[string]bool{},
	}
}

// NewSeeded returns the tenant of package seed: groups aks-default, aks-admin,
// aks-approvers (with nested groups), finance-admins, aks-ops, and the users
// n01, n02, p01, p02, p03, d01, d02, g01, x01, s01 (standing member of
// aks-admin) and a01.
func NewSeeded() *Dir {
	d := NewDir()
	u := func(id, name string, enabled, guest bool) {
		upn := seed.UPN(name)
		if guest {
			upn = seed.GuestUPN
		}
		d.AddUser(broker.User{ID: id, UPN: upn, Enabled: enabled, Guest: guest})
	}
	u(seed.UserN01, "n01", true, false)
	u(seed.UserN02, "n02", true, false)
	u(seed.UserP01, "p01", true, false)
	u(seed.UserP02, "p02", true, false)
	u(seed.UserP03, "p03", true, false)
	u(seed.UserD01, "d01", false, false)
	u(seed.UserD02, "d02", false, false)
	u(seed.UserG01, "g01", true, true)
	u(seed.UserX01, "x01", true, false)
	u(seed.UserS01, "s01", true, false)
	u(seed.UserA01, "a01", true, false)
	for _, m := range [][2]string{
		{seed.GroupAKSDefault, seed.UserN01},
		{seed.GroupAKSDefault, seed.UserD01},
		{seed.GroupAKSDefault, seed.UserG01},
		{seed.GroupAKSDefault, seed.UserS01},
		{seed.GroupAKSDefault, seed.UserA01},
		{seed.GroupAKSDefault, seed.GroupNestedDefault},
		{seed.GroupNestedDefault, seed.UserN02},
		{seed.GroupAKSApprovers, seed.UserP01},
		{seed.GroupAKSApprovers, seed.UserP03},
		{seed.GroupAKSApprovers, seed.UserD02},
		{seed.GroupAKSApprovers, seed.UserA01},
		{seed.GroupAKSApprovers, seed.GroupNestedApprovers},
		{seed.GroupNestedApprovers, seed.UserP02},
		{seed.GroupAKSAdmin, seed.UserS01},
	} {
		d.SetMember(m[0], m[1])
	}
	return d
}

// AddUser adds or replaces a user.
func (d *Dir) AddUser(u broker.User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u.ID = strings.ToLower(u.ID)
	d.users[u.ID] = u
	d.byUPN[strings.ToLower(u.UPN)] = u.ID
}

// SetUser changes a user's flags.
func (d *Dir) SetUser(id string, enabled, guest bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.users[strings.ToLower(id)]
	u.Enabled, u.Guest = enabled, guest
	d.users[u.ID] = u
}

// SetMember makes member (a user or a group) a direct member of group, without
// counting it as a write (an administrator's change: under a replica lag,
// reads may not see it yet).
func (d *Dir) SetMember(group, member string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(group, member, true)
}

// UnsetMember removes a direct membership, without counting it as a write
// (under a replica lag, reads may still see it).
func (d *Dir) UnsetMember(group, member string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(group, member, false)
}

func (d *Dir) setLocked(group, member string, on bool) bool {
	group, member = strings.ToLower(group), strings.ToLower(member)
	m := d.members[group]
	if m == nil {
		m = map[string]bool{}
		d.members[group] = m
	}
	was := m[member]
	if was != on {
		d.rep.record(change{edge: edge{group, member}, wasMember: was})
	}
	if on {
		m[member] = true
	} else {
		delete(m, member)
	}
	return was != on
}

// IsDirectMember reports whether member is a direct member of group (the
// truth, whatever the replica lag).
func (d *Dir) IsDirectMember(group, member string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.members[strings.ToLower(group)][strings.ToLower(member)]
}

// DirectMembers lists the direct members of group, sorted (the truth,

// IsTransitiveMember reports whether member is a member of group, directly
// or through nested groups (the truth, whatever the replica lag).
func (d *Dir) IsTransitiveMember(group, member string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.transitiveLocked(readView{}, strings.ToLower(group), strings.ToLower(member), map[string]bool{})
}

// whatever the replica lag; MembersPort's DirectMembers lags).
func (d *Dir) DirectMembers(group string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for m := range d.members[strings.ToLower(group)] {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Fail queues err as the result of the next call of method (calls queue up).
// The failed call does nothing but is counted.
func (d *Dir) Fail(method string, err error) { d.gate.queue(method, err) }

// SetHook installs a function called (unlocked) at the start of every call,
// with the method and its arguments; a non-nil error fails the call.
func (d *Dir) SetHook(h func(method string, args ...string) error) { d.gate.setHook(h) }

// Transient returns an error of kind fault.ErrTransient, as the Graph adapter
// gives for 429/5xx.
func Transient(method string) error {
	return fault.Wrap(fault.ErrTransient, method, errors.New("503 service unavailable (injected)"))
}

// Permanent returns an error of kind fault.ErrPermanent, as the Graph adapter
// gives for 403.
func Permanent(method string) error {
	return fault.Wrap(fault.ErrPermanent, method, errors.New("403 forbidden (injected)"))
}

// Calls returns how often method was called (failed calls included).
func (d *Dir) Calls(method string) int { return d.gate.count(method) }

// Writes returns the successful writes in order.
func (d *Dir) Writes() []Write {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.writes)
}

// WriteCount counts successful writes of op (MAddMember, ...) that really
// changed something (for MRevokeSessions: every successful call).
func (d *Dir) WriteCount(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, w := range d.writes {
		if w.Op == op && w.Changed {
			n++
		}
	}
	return n
}

// RevokedFor counts successful RevokeSessions calls for user.
func (d *Dir) RevokedFor(user string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, w := range d.writes {
		if w.Op == MRevokeSessions && w.UserID == strings.ToLower(user) {
			n++
		}
	}
	return n
}

func (d *Dir) enter(ctx context.Context, method string, args ...string) error {
	return d.gate.enter(ctx, method, args...)
}

var _ broker.Directory = (*Dir)(nil)

// LookupUser resolves an object id or a UPN (case-insensitively).
func (d *Dir) LookupUser(ctx context.Context, idOrUPN string) (broker.User, error) {
	if err := d.enter(ctx, MLookupUser, idOrUPN); err != nil {
		return broker.User{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := strings.ToLower(idOrUPN)
	if u, ok := d.users[k]; ok {
		return u, nil
	}
	if id, ok := d.byUPN[k]; ok {
		return d.users[id], nil
	}
	return broker.User{}, fault.Wrap(fault.ErrNotFound, MLookupUser, fmt.Errorf("user %q not found", idOrUPN))
}

// MemberOfAny reports which of groupIDs the user is a transitive member of
// (as of a recent moment under a replica lag).
func (d *Dir) MemberOfAny(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	if err := d.enter(ctx, MMemberOfAny, append([]string{userID}, groupIDs...)...); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users[strings.ToLower(userID)]; !ok {
		return nil, fault.Wrap(fault.ErrNotFound, MMemberOfAny, fmt.Errorf("user %q not found", userID))
	}
	v := d.rep.view()
	var out []string
	for _, g := range groupIDs {
		if d.transitiveLocked(v, strings.ToLower(g), strings.ToLower(userID), map[string]bool{}) {
			out = append(out, g)
		}
	}
	return out, nil
}

func (d *Dir) transitiveLocked(v readView, group, member string, seen map[string]bool) bool {
	if seen[group] {
		return false
	}
	seen[group] = true
	for _, m := range d.membersLocked(v, group) {
		if m == member {
			return true
		}
		if _, isGroup := d.members[m]; isGroup && d.transitiveLocked(v, m, member, seen) {
			return true
		}
	}
	return false
}

// AddMember adds a direct member; added is false when it already was one.
func (d *Dir) AddMember(ctx context.Context, groupID, userID string) (bool, error) {
	if err := d.enter(ctx, MAddMember, groupID, userID); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := d.setLocked(groupID, userID, true)
	d.writes = append(d.writes, Write{Op: MAddMember, GroupID: strings.ToLower(groupID), UserID: strings.ToLower(userID), Changed: changed})
	return changed, nil
}

// RemoveMember removes a direct member; removed is false when it was none.
func (d *Dir) RemoveMember(ctx context.Context, groupID, userID string) (bool, error) {
	if err := d.enter(ctx, MRemoveMember, groupID, userID); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := d.setLocked(groupID, userID, false)
	d.writes = append(d.writes, Write{Op: MRemoveMember, GroupID: strings.ToLower(groupID), UserID: strings.ToLower(userID), Changed: changed})
	return changed, nil
}

// RevokeSessions records a revocation for the user.
func (d *Dir) RevokeSessions(ctx context.Context, userID string) error {
	if err := d.enter(ctx, MRevokeSessions, userID); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.users[strings.ToLower(userID)]; !ok {
		return fault.Wrap(fault.ErrNotFound, MRevokeSessions, fmt.Errorf("user %q not found", userID))
	}
	d.writes = append(d.writes, Write{Op: MRevokeSessions, UserID: strings.ToLower(userID), Changed: true})
	return nil
}

// Clock is a settable clock (broker.Clock), safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t.UTC()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t.UTC()
}
