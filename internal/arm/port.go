package arm

import (
	"context"
	"strings"

	"github.com/jitaccess/jitaccess/internal/broker"
)

var _ broker.RoleAssignments = (*Client)(nil)

// Holds reports whether principalID has roleDefinitionID at scope, assigned
// there or above it (a read: a hint, docs/design.md, The real directory).
func (c *Client) Holds(ctx context.Context, scope, roleDefinitionID, principalID string) (bool, error) {
	as, err := c.List(ctx, scope, principalID)
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if strings.EqualFold(a.PrincipalID, principalID) && a.Grants(scope, roleDefinitionID) {
			return true, nil
		}
	}
	return false, nil
}

// Principals lists the principals that have roleDefinitionID assigned at
// exactly scope (drift reconciliation), lower case.
func (c *Client) Principals(ctx context.Context, scope, roleDefinitionID string) ([]string, error) {
	as, err := c.ListAtScope(ctx, scope)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		if strings.EqualFold(strings.TrimRight(a.Scope, "/"), strings.TrimRight(scope, "/")) && a.Grants(scope, roleDefinitionID) {
			out = append(out, strings.ToLower(a.PrincipalID))
		}
	}
	return out, nil
}
