package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// RBAC is an in-memory Azure Resource Manager role-assignment store that
// implements broker.RoleAssignments for broker tests (the adapter's own
// tests run against internal/armsim): assignments keyed by name; a second
// assignment of the same role to the same principal at the same scope under
// another name is refused as ARM does (RoleAssignmentExists → created false).
// Errors can be injected per method; every successful write is recorded.
type RBAC struct {
	mu     sync.Mutex
	byName map[string]Assignment
	gate   gate // Fail, SetHook, Calls
	writes []RBACWrite
}

// Assignment is a role assignment of the fake.
type Assignment struct {
	Name, Scope, RoleDefinitionID, PrincipalID string
}

// RBACWrite is one successful write: the method and the assignment name,
// and whether it changed something.
type RBACWrite struct {
	Method  string
	Name    string
	Changed bool
}

// RBAC method names for Fail, SetHook and Calls.
const (
	MAssign     = "Assign"
	MDelete     = "Delete"
	MHolds      = "Holds"
	MPrincipals = "Principals"
)

// NewRBAC returns an empty role-assignment store.
func NewRBAC() *RBAC {
	return &RBAC{byName: map[string]Assignment{}}
}

var _ broker.RoleAssignments = (*RBAC)(nil)

func same(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

func roleGUID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// Add makes an assignment (an administrator's, outside jitaccess).
func (r *RBAC) Add(a Assignment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byName[strings.ToLower(a.Name)] = a
}

// Has reports whether principal has role at scope (exactly there).
func (r *RBAC) Has(scope, role, principal string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hasLocked(scope, role, principal) != ""
}

func (r *RBAC) hasLocked(scope, role, principal string) string {
	for n, a := range r.byName {
		if same(a.Scope, scope) && strings.EqualFold(roleGUID(a.RoleDefinitionID), roleGUID(role)) && strings.EqualFold(a.PrincipalID, principal) {
			return n
		}
	}
	return ""
}

// Assignments returns every assignment, by name.
func (r *RBAC) Assignments() []Assignment {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Assignment
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.byName {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, r.byName[n])
	}
	return out
}

// Writes returns the successful writes in order.
func (r *RBAC) Writes() []RBACWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// Calls counts the calls of method (failed ones included).
func (r *RBAC) Calls(method string) int { return r.gate.count(method) }

// Fail queues err as the result of the next call of method.
func (r *RBAC) Fail(method string, err error) { r.gate.queue(method, err) }

// SetHook installs a function called (unlocked) at the start of every call.
func (r *RBAC) SetHook(h func(method string) error) {
	if h == nil {
		r.gate.setHook(nil)
		return
	}
	r.gate.setHook(func(method string, _ ...string) error { return h(method) })
}

func (r *RBAC) enter(ctx context.Context, method string) error { return r.gate.enter(ctx, method) }

// Assign creates the assignment name; created is false when the principal
// already had the role at the scope under another name.
func (r *RBAC) Assign(ctx context.Context, scope, roleDefinitionID, principalID, name string) (bool, error) {
	if err := r.enter(ctx, MAssign); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(name)
	if a, ok := r.byName[key]; ok {
		if !same(a.Scope, scope) || !strings.EqualFold(a.PrincipalID, principalID) || !strings.EqualFold(roleGUID(a.RoleDefinitionID), roleGUID(roleDefinitionID)) {
			return false, fault.Wrap(fault.ErrPermanent, MAssign, errors.New("RoleAssignmentUpdateNotPermitted (fake)"))
		}
		r.writes = append(r.writes, RBACWrite{Method: MAssign, Name: key})
		return true, nil // a repeat of ours: 200
	}
	if r.hasLocked(scope, roleDefinitionID, principalID) != "" {
		return false, nil // 409 RoleAssignmentExists
	}
	r.byName[key] = Assignment{Name: key, Scope: scope, RoleDefinitionID: roleDefinitionID, PrincipalID: strings.ToLower(principalID)}
	r.writes = append(r.writes, RBACWrite{Method: MAssign, Name: key, Changed: true})
	return true, nil
}

// Delete removes the assignment name; removed is false when it was none.
func (r *RBAC) Delete(ctx context.Context, scope, name string) (bool, error) {
	if err := r.enter(ctx, MDelete); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(name)
	a, ok := r.byName[key]
	if ok && !same(a.Scope, scope) {
		return false, fault.Wrap(fault.ErrNotFound, MDelete, fmt.Errorf("assignment %s is not at %s (fake)", name, scope))
	}
	delete(r.byName, key)
	r.writes = append(r.writes, RBACWrite{Method: MDelete, Name: key, Changed: ok})
	return ok, nil
}

// Holds reports whether the principal has the role at the scope.
func (r *RBAC) Holds(ctx context.Context, scope, roleDefinitionID, principalID string) (bool, error) {
	if err := r.enter(ctx, MHolds); err != nil {
		return false, err
	}
	return r.Has(scope, roleDefinitionID, principalID), nil
}

// Principals lists the principals with the role exactly at the scope.
func (r *RBAC) Principals(ctx context.Context, scope, roleDefinitionID string) ([]string, error) {
	if err := r.enter(ctx, MPrincipals); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.byName {
		if same(a.Scope, scope) && strings.EqualFold(roleGUID(a.RoleDefinitionID), roleGUID(roleDefinitionID)) {
			out = append(out, strings.ToLower(a.PrincipalID))
		}
	}
	slices.Sort(out)
	return out, nil
}
