package armsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// The Sim's world: scopes (subscriptions, resource groups, resources),
// role definitions and role assignments, with the accessors tests use.
// Accessors see and change the truth; changes they make are subject to the
// replica lag like any other write.

// AddScope makes scopes known, with their ancestors: a resource's resource
// group and subscription, a resource group's subscription. A scope is an
// ARM resource id: /subscriptions/{id}, .../resourceGroups/{rg}, or
// .../resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}...].
// It panics on a scope of another shape (a mistake in the test).
func (s *Sim) AddScope(scopes ...string) *Sim {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range scopes {
		seg := scopeSegments(sc)
		if seg == nil {
			panic(fmt.Sprintf("armsim: AddScope(%q): not /subscriptions/{id}[/resourceGroups/{rg}[/providers/{ns}/{type}/{name}...]]", sc))
		}
		for _, n := range ancestorLengths(seg) {
			p := "/" + strings.Join(seg[:n], "/")
			if _, ok := s.scopes[strings.ToLower(p)]; !ok {
				s.scopes[strings.ToLower(p)] = p
			}
		}
	}
	return s
}

// RemoveScope forgets scope and every scope under it, as when a cluster
// or resource group is deleted, and deletes the role assignments at them
// (ARM removes a deleted resource's role assignments). It returns how many
// assignments went.
func (s *Sim) RemoveScope(scope string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.scopes {
		if isAtOrAbove(scope, k) {
			delete(s.scopes, k)
		}
	}
	n := 0
	now := s.opts.Now().UTC()
	for name, a := range s.assigns {
		if isAtOrAbove(scope, a.Scope) {
			before := *a
			delete(s.assigns, name)
			s.logChange(now, name, &before)
			n++
		}
	}
	return n
}

// Scopes lists the known scopes as registered.
func (s *Sim) Scopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, v := range s.scopes {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// AddRoleDefinition makes role definitions known, by GUID or by full id
// (/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}
// or /providers/...; only the GUID counts). It panics on another shape.
func (s *Sim) AddRoleDefinition(ids ...string) *Sim {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		g := roleGUID(id)
		if g == "" {
			panic(fmt.Sprintf("armsim: AddRoleDefinition(%q): not a role definition id or GUID", id))
		}
		s.roles[g] = true
	}
	return s
}

// AddAssignment puts an assignment in place as someone else would (a
// standing assignment, or one made outside jitaccess): a.Name (a new GUID
// when empty), a.Scope, a.RoleDefinitionID (GUID or full id), a.PrincipalID;
// a.PrincipalType defaults to User. The scope and role need not be known.
// It returns the name. An assignment of the same name is replaced.
func (s *Sim) AddAssignment(a Assignment) string {
	if a.Name == "" {
		a.Name = simkit.NewID()
	}
	a.Name = strings.ToLower(a.Name)
	a.PrincipalID = strings.ToLower(a.PrincipalID)
	if g := roleGUID(a.RoleDefinitionID); g != "" {
		a.RoleDefinitionID = roleID(a.Scope, g)
	}
	if a.PrincipalType == "" {
		a.PrincipalType = "User"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.scopes[strings.ToLower(a.Scope)]; ok {
		a.Scope = c
	}
	now := s.opts.Now().UTC()
	if a.CreatedOn.IsZero() {
		a.CreatedOn, a.UpdatedOn = now, now
	}
	var before *Assignment
	if old := s.assigns[a.Name]; old != nil {
		cp := *old
		before = &cp
	}
	s.assigns[a.Name] = &a
	s.logChange(now, a.Name, before)
	return a.Name
}

// RemoveAssignment deletes the assignment of that name as someone else
// would; false when there was none.
func (s *Sim) RemoveAssignment(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.assigns[strings.ToLower(name)]
	if a == nil {
		return false
	}
	before := *a
	delete(s.assigns, a.Name)
	s.logChange(s.opts.Now().UTC(), a.Name, &before)
	return true
}

// Assignment returns the assignment of that name (the truth).
func (s *Sim) Assignment(name string) (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.assigns[strings.ToLower(name)]
	if a == nil {
		return Assignment{}, false
	}
	return *a, true
}

// Assignments returns every assignment (the truth), by scope then name.
func (s *Sim) Assignments() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Assignment, 0, len(s.assigns))
	for _, a := range s.assigns {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Assignment) int {
		if c := strings.Compare(strings.ToLower(a.Scope), strings.ToLower(b.Scope)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// HasAssignment reports whether principal holds role (GUID or full id)
// at exactly scope, under any name (the truth).
func (s *Sim) HasAssignment(scope, role, principal string) bool {
	g := roleGUID(role)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.assigns {
		if strings.EqualFold(a.Scope, scope) && a.RoleGUID() == g && strings.EqualFold(a.PrincipalID, principal) {
			return true
		}
	}
	return false
}

// scopeSegments splits an ARM scope into its segments: nil unless it is
// /subscriptions/{id}[/resourceGroups/{rg}[/providers/{ns}/{type}/{name}[/{type}/{name}]...]].
func scopeSegments(scope string) []string {
	if !strings.HasPrefix(scope, "/") || strings.HasSuffix(scope, "/") {
		return nil
	}
	seg := strings.Split(scope[1:], "/")
	for _, p := range seg {
		if p == "" || p == "." || p == ".." {
			return nil
		}
	}
	switch {
	case len(seg) < 2 || !strings.EqualFold(seg[0], "subscriptions"):
		return nil
	case len(seg) == 2:
		return seg
	case len(seg) == 3 || !strings.EqualFold(seg[2], "resourceGroups"):
		return nil
	case len(seg) == 4:
		return seg
	case len(seg) < 8 || !strings.EqualFold(seg[4], "providers") || len(seg)%2 != 0:
		return nil
	}
	return seg
}

// ancestorLengths are the segment counts of a scope's levels, top first:
// 2 (subscription), 4 (resource group), 8, 10, ... (resources).
func ancestorLengths(seg []string) []int {
	var out []int
	for _, n := range []int{2, 4} {
		if n <= len(seg) {
			out = append(out, n)
		}
	}
	for n := 8; n <= len(seg); n += 2 {
		out = append(out, n)
	}
	return out
}

// knownScope returns the scope as registered, or answers as ARM does for
// a scope that does not exist and returns false.
func (s *Sim) knownScope(w http.ResponseWriter, scope string) (string, bool) {
	canon, status, code, msg := s.lookupScope(scope)
	if status != 0 {
		writeError(w, status, code, msg, 0)
		return "", false
	}
	return canon, true
}

// lookupScope returns the scope as registered, or ARM's answer for a scope
// that does not exist (status != 0).
func (s *Sim) lookupScope(scope string) (canon string, status int, code, msg string) {
	seg := scopeSegments(scope)
	if len(seg) < 2 {
		return "", http.StatusBadRequest, "MissingSubscription",
			"The request did not have a subscription or a valid tenant level resource provider."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := func(n int) (string, bool) {
		c, ok := s.scopes[strings.ToLower("/"+strings.Join(seg[:n], "/"))]
		return c, ok
	}
	if c, ok := known(len(seg)); ok {
		return c, 0, "", ""
	}
	if _, ok := known(2); !ok {
		return "", http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found.", seg[1])
	}
	if len(seg) >= 4 {
		if _, ok := known(4); !ok {
			return "", http.StatusNotFound, "ResourceGroupNotFound", fmt.Sprintf("Resource group '%s' could not be found.", seg[3])
		}
	}
	// A Kubernetes namespace under a known cluster.
	if n := len(seg); n >= 10 && strings.EqualFold(seg[n-2], "namespaces") &&
		strings.EqualFold(seg[5], "Microsoft.ContainerService") && strings.EqualFold(seg[n-4], "managedClusters") {
		if c, ok := known(n - 2); ok {
			return c + "/namespaces/" + seg[n-1], 0, "", ""
		}
	}
	// Name the topmost resource that is missing.
	for _, n := range ancestorLengths(seg) {
		if n < 8 {
			continue
		}
		if _, ok := known(n); !ok {
			name := seg[7]
			for i := 9; i < n; i += 2 {
				name += "/" + seg[i]
			}
			return "", http.StatusNotFound, "ResourceNotFound",
				fmt.Sprintf("The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", resourceType(seg[:n]), name, seg[3])
		}
	}
	return "", http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The scope '%s' was not found.", scope)
}

// resourceType is "{namespace}/{type}[/{childType}...]" of a resource id's
// segments.
func resourceType(seg []string) string {
	t := seg[5] + "/" + seg[6]
	for i := 8; i < len(seg); i += 2 {
		t += "/" + seg[i]
	}
	return t
}

// Now is the Sim's clock.
func (s *Sim) Now() time.Time { return s.opts.Now() }
