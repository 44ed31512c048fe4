package graphsim

import (
	"sort"
	"strings"

	"github.com/jitaccess/jitaccess/internal/seed"
)

// User is a simulated directory user.
type User struct {
	ID          string
	UPN         string
	DisplayName string
	Enabled     bool
	Guest       bool // userType "Guest" (else "Member")
}

// Group is a simulated security group.
type Group struct {
	ID          string
	DisplayName string
}

// tenant is the directory state; every method expects s.mu held.
type tenant struct {
	users   map[string]*User           // by lower-case id
	upns    map[string]string          // lower-case UPN → lower-case id
	groups  map[string]*Group          // by lower-case id
	members map[string]map[string]bool // group id → direct member ids (users and groups)
	revokes map[string]int             // user id → revokeSignInSessions count
}

func newTenant() tenant {
	return tenant{
		users:   map[string]*User{},
		upns:    map[string]string{},
		groups:  map[string]*Group{},
		members: map[string]map[string]bool{},
		revokes: map[string]int{},
	}
}

func norm(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

// resolveUser finds a user by object id or UPN (case-insensitive).
func (t *tenant) resolveUser(idOrUPN string) *User {
	k := norm(idOrUPN)
	if u, ok := t.users[k]; ok {
		return u
	}
	if id, ok := t.upns[k]; ok {
		return t.users[id]
	}
	return nil
}

func (t *tenant) objectType(id string) string {
	if _, ok := t.users[id]; ok {
		return "#microsoft.graph.user"
	}
	if _, ok := t.groups[id]; ok {
		return "#microsoft.graph.group"
	}
	return ""
}

// memberView is the direct-membership relation as one read sees it: the
// tenant's truth, with (replica lag, lag.go) the memberships that changed
// since the read's moment set back to what they were then.
type memberView struct {
	t    *tenant
	asOf map[edge]bool // nil: the truth
}

func (t *tenant) truth() memberView { return memberView{t: t} }

func (v memberView) has(group, member string) bool {
	if on, ok := v.asOf[edge{group, member}]; ok {
		return on
	}
	return v.t.members[group][member]
}

// transitiveGroups returns every group that object id is a member of,
// directly or through nested groups (cycles tolerated).
func (v memberView) transitiveGroups(id string) map[string]bool {
	out := map[string]bool{}
	frontier := []string{id}
	for len(frontier) > 0 {
		cur := frontier[0]
		frontier = frontier[1:]
		for g := range v.t.members {
			if !out[g] && v.has(g, cur) {
				out[g] = true
				frontier = append(frontier, g)
			}
		}
	}
	return out
}

// sortedMembers lists the direct members of group that still exist.
func (v memberView) sortedMembers(group string) []string {
	ms := v.t.members[group]
	out := make([]string, 0, len(ms))
	for m := range ms {
		if v.has(group, m) {
			out = append(out, m)
		}
	}
	for e, on := range v.asOf {
		if on && e.group == group && !ms[e.member] && v.t.objectType(e.member) != "" {
			out = append(out, e.member)
		}
	}
	sort.Strings(out)
	return out
}

func (t *tenant) transitiveGroups(id string) map[string]bool { return t.truth().transitiveGroups(id) }

func (t *tenant) sortedMembers(group string) []string { return t.truth().sortedMembers(group) }

// SeedTenant loads the tenant of internal/seed: the groups aks-default,
// aks-admin, aks-approvers, finance-admins, approvers-nested (member of
// aks-approvers), default-nested (member of aks-default), aks-ops and the
// users n01, n02, p01, p02, p03, d01, d02, g01 (guest), x01, s01, a01 with
// their memberships. It returns s for chaining.
func (s *Sim) SeedTenant() *Sim {
	groups := []Group{
		{seed.GroupAKSDefault, "aks-default"},
		{seed.GroupAKSAdmin, "aks-admin"},
		{seed.GroupAKSApprovers, "aks-approvers"},
		{seed.GroupFinanceAdmins, "finance-admins"},
		{seed.GroupNestedApprovers, "approvers-nested"},
		{seed.GroupNestedDefault, "default-nested"},
		{seed.GroupAKSOps, "aks-ops"},
	}
	for _, g := range groups {
		s.AddGroup(g)
	}
	type su struct {
		id, name string
		enabled  bool
		groups   []string
	}
	users := []su{
		{seed.UserN01, "n01", true, []string{seed.GroupAKSDefault}},
		{seed.UserP01, "p01", true, []string{seed.GroupAKSApprovers}},
		{seed.UserP02, "p02", true, []string{seed.GroupNestedApprovers}},
		{seed.UserN02, "n02", true, []string{seed.GroupNestedDefault}},
		{seed.UserD01, "d01", false, []string{seed.GroupAKSDefault}},
		{seed.UserD02, "d02", false, []string{seed.GroupAKSApprovers}},
		{seed.UserX01, "x01", true, nil},
		{seed.UserS01, "s01", true, []string{seed.GroupAKSAdmin, seed.GroupAKSDefault}},
		{seed.UserA01, "a01", true, []string{seed.GroupAKSDefault, seed.GroupAKSApprovers}},
		{seed.UserP03, "p03", true, []string{seed.GroupAKSApprovers}},
	}
	for _, u := range users {
		s.AddUser(User{ID: u.id, UPN: seed.UPN(u.name), DisplayName: u.name, Enabled: u.enabled})
		for _, g := range u.groups {
			s.seedMember(g, u.id)
		}
	}
	s.AddUser(User{ID: seed.UserG01, UPN: seed.GuestUPN, DisplayName: "g01 (guest)", Enabled: true, Guest: true})
	s.seedMember(seed.GroupAKSDefault, seed.UserG01)
	s.seedMember(seed.GroupAKSApprovers, seed.GroupNestedApprovers)
	s.seedMember(seed.GroupAKSDefault, seed.GroupNestedDefault)
	return s
}

// seedMember is AddMember for the seed tenant: not in the replica log, so
// every read sees it even under a lag.
func (s *Sim) seedMember(group, member string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMemberLocked(norm(group), norm(member), false)
}

// AddUser adds or replaces a user.
func (s *Sim) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = norm(u.ID)
	if old, ok := s.t.users[u.ID]; ok {
		delete(s.t.upns, norm(old.UPN))
	}
	s.t.users[u.ID] = &u
	if u.UPN != "" {
		s.t.upns[norm(u.UPN)] = u.ID
	}
}

// DeleteUser removes a user and its memberships.
func (s *Sim) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = norm(id)
	if u, ok := s.t.users[id]; ok {
		delete(s.t.upns, norm(u.UPN))
		delete(s.t.users, id)
	}
	now := s.opts.Now().UTC()
	for g, ms := range s.t.members {
		if ms[id] {
			delete(ms, id)
			s.logMember(now, g, id, true)
		}
	}
}

// AddGroup adds or replaces a group.
func (s *Sim) AddGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.ID = norm(g.ID)
	s.t.groups[g.ID] = &g
	if s.t.members[g.ID] == nil {
		s.t.members[g.ID] = map[string]bool{}
	}
}

// User returns a copy of the user (by id or UPN).
func (s *Sim) User(idOrUPN string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.t.resolveUser(idOrUPN)
	if u == nil {
		return User{}, false
	}
	return *u, true
}

// SetEnabled sets accountEnabled of a user; false if the user is unknown.
func (s *Sim) SetEnabled(userID string, enabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.t.resolveUser(userID)
	if u == nil {
		return false
	}
	u.Enabled = enabled
	return true
}

// AddMember makes member (a user or a group id) a direct member of group,
// as an administrator would (no audit record; under a replica lag, reads may
// not see it yet). It reports whether the membership is new; false also when
// the group or member is unknown.
func (s *Sim) AddMember(group, member string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addMemberLocked(norm(group), norm(member), true)
}

func (s *Sim) addMemberLocked(g, m string, log bool) bool {
	if s.t.groups[g] == nil || s.t.objectType(m) == "" || s.t.members[g][m] {
		return false
	}
	s.t.members[g][m] = true
	if log {
		s.logMember(s.opts.Now().UTC(), g, m, false)
	}
	return true
}

// RemoveMember removes a direct member, as an administrator would (under a
// replica lag, reads may still see it); it reports whether it was one.
func (s *Sim) RemoveMember(group, member string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, m := norm(group), norm(member)
	if !s.t.members[g][m] {
		return false
	}
	delete(s.t.members[g], m)
	s.logMember(s.opts.Now().UTC(), g, m, true)
	return true
}

// IsDirectMember reports whether member is a direct member of group.
func (s *Sim) IsDirectMember(group, member string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.members[norm(group)][norm(member)]
}

// IsTransitiveMember reports whether member belongs to group directly or
// through nested groups.
func (s *Sim) IsTransitiveMember(group, member string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.transitiveGroups(norm(member))[norm(group)]
}

// Members returns the direct member ids of group, sorted.
func (s *Sim) Members(group string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.sortedMembers(norm(group))
}

// RevokeCount is how many times revokeSignInSessions succeeded for userID.
func (s *Sim) RevokeCount(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.revokes[norm(userID)]
}
