// Package policy loads and validates profiles.json (docs/design.md, The contract) and answers
// which profile a name or a group belongs to.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/arm/armid"
)

// Set is a validated, immutable set of profiles.
type Set struct {
	list    []access.Profile
	byName  map[string]*access.Profile
	byGroup map[string][]*access.Profile
	// byRole: azure-role profiles by target key; roles: the keys in order.
	byRole map[string][]*access.Profile
	roles  []string
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s is an Entra object id.
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// LoadFile reads and validates a profiles file. Errors name the file, and the
// profile and field when one is at fault.
func LoadFile(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profiles file %s: %w", path, err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("profiles file %s: %w", path, err)
	}
	return s, nil
}

type rawProfile struct {
	Name                 *string  `json:"name"`
	TargetGroupID        *string  `json:"targetGroupId"`
	EligibleGroupIDs     []string `json:"eligibleGroupIds"`
	ApproverGroupIDs     []string `json:"approverGroupIds"`
	ApprovalsRequired    *int     `json:"approvalsRequired"`
	DefaultDuration      *string  `json:"defaultDuration"`
	MaxDuration          *string  `json:"maxDuration"`
	ApprovalTimeout      *string  `json:"approvalTimeout"`
	RequireJustification *bool    `json:"requireJustification"`
	RequireTicket        *bool    `json:"requireTicket"`
	Activation           *string  `json:"activation"`
	RevokeSessionsOnEnd  *bool    `json:"revokeSessionsOnEnd"`
	OutOfBand            *string  `json:"outOfBand"`
	Scope                *string  `json:"scope"`
	RoleDefinitionID     *string  `json:"roleDefinitionId"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse validates the JSON of a profiles file. Unknown fields are refused so
// that a misspelt setting ("maxDurration") is not silently ignored.
func Parse(b []byte) (*Set, error) {
	var doc struct {
		Profiles []json.RawMessage `json:"profiles"`
	}
	if err := decodeStrict(b, &doc); err != nil {
		return nil, fmt.Errorf("not valid profiles JSON: %w", err)
	}
	if len(doc.Profiles) == 0 {
		return nil, errors.New(`no profiles: expected {"profiles":[...]} with at least one profile`)
	}
	s := &Set{byName: map[string]*access.Profile{}, byGroup: map[string][]*access.Profile{}, byRole: map[string][]*access.Profile{}}
	for i, raw := range doc.Profiles {
		// Each profile is decoded on its own, so that an unknown field or a
		// wrongly typed value is reported with the profile it is in.
		var rp rawProfile
		err := decodeStrict(raw, &rp)
		var p access.Profile
		if err == nil {
			p, err = validate(rp)
		}
		if err != nil {
			name := fmt.Sprintf("#%d", i+1)
			var named struct{ Name any }
			if json.Unmarshal(raw, &named) == nil {
				if n, ok := named.Name.(string); ok && n != "" {
					name = fmt.Sprintf("%q", n)
				}
			}
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("profile %q: name: used by more than one profile", p.Name)
		}
		s.list = append(s.list, p)
		s.byName[p.Name] = nil
	}
	for i := range s.list {
		p := &s.list[i]
		s.byName[p.Name] = p
		if p.Activation == access.ActivationAzureRole {
			k := p.TargetKey()
			if _, ok := s.byRole[k]; !ok {
				s.roles = append(s.roles, k)
			}
			s.byRole[k] = append(s.byRole[k], p)
			continue
		}
		g := strings.ToLower(p.TargetGroupID)
		for _, other := range s.byGroup[g] {
			if other.OutOfBand != p.OutOfBand {
				return nil, fmt.Errorf("profile %q: outOfBand: %q disagrees with profile %q (%q) on the same target group", p.Name, p.OutOfBand, other.Name, other.OutOfBand)
			}
		}
		s.byGroup[g] = append(s.byGroup[g], p)
	}
	return s, nil
}

// decodeStrict decodes exactly one JSON value, refusing unknown fields and
// trailing data, and names the offending field of a type error.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return fmt.Errorf("must be a JSON object, not %s", te.Value)
			}
			return fmt.Errorf("%s: must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "integer"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return goKind
}

func validate(rp rawProfile) (access.Profile, error) {
	var p access.Profile
	field := func(name string, err error) error { return fmt.Errorf("%s: %w", name, err) }
	if rp.Name == nil || !namePattern.MatchString(*rp.Name) {
		return p, field("name", errors.New("required: 1-64 letters, digits, '.', '_' or '-'"))
	}
	p.Name = *rp.Name
	azureRole := rp.Activation != nil && *rp.Activation == access.ActivationAzureRole
	switch {
	case azureRole:
		if rp.TargetGroupID != nil {
			return p, field("targetGroupId", errors.New("not used with activation \"azure-role\": the grant is a role assignment at scope"))
		}
		if rp.Scope == nil || *rp.Scope == "" {
			return p, field("scope", errors.New("required with activation \"azure-role\": an AKS cluster's resource id, or a namespace under it"))
		}
		if _, err := armid.ParseScope(*rp.Scope); err != nil {
			return p, field("scope", err)
		}
		if rp.RoleDefinitionID == nil || *rp.RoleDefinitionID == "" {
			return p, field("roleDefinitionId", errors.New("required with activation \"azure-role\": the role definition's GUID or resource id"))
		}
		if err := armid.ValidateTarget(*rp.Scope, *rp.RoleDefinitionID); err != nil {
			return p, field("roleDefinitionId", err)
		}
		p.Scope, p.RoleDefinitionID = *rp.Scope, *rp.RoleDefinitionID
	default:
		if rp.Scope != nil || rp.RoleDefinitionID != nil {
			return p, field("scope", errors.New("only used with activation \"azure-role\""))
		}
		if rp.TargetGroupID == nil || !IsGUID(*rp.TargetGroupID) {
			return p, field("targetGroupId", errors.New("required: the target group's object id (a GUID)"))
		}
		p.TargetGroupID = strings.ToLower(*rp.TargetGroupID)
	}
	groups := func(name string, ids []string) ([]string, error) {
		if len(ids) == 0 {
			return nil, field(name, errors.New("required: at least one group object id"))
		}
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			if !IsGUID(id) {
				return nil, field(name, fmt.Errorf("%q is not a group object id (a GUID)", id))
			}
			if strings.EqualFold(id, p.TargetGroupID) {
				return nil, field(name, errors.New("must not contain the target group itself"))
			}
			out = append(out, strings.ToLower(id))
		}
		return out, nil
	}
	var err error
	if p.EligibleGroupIDs, err = groups("eligibleGroupIds", rp.EligibleGroupIDs); err != nil {
		return p, err
	}
	if rp.ApprovalsRequired == nil {
		return p, field("approvalsRequired", errors.New("required: 0 (auto-approve) or more"))
	}
	p.ApprovalsRequired = *rp.ApprovalsRequired
	if p.ApprovalsRequired < 0 || p.ApprovalsRequired > 10 {
		return p, field("approvalsRequired", errors.New("must be between 0 and 10"))
	}
	if p.ApprovalsRequired > 0 || len(rp.ApproverGroupIDs) > 0 {
		if p.ApproverGroupIDs, err = groups("approverGroupIds", rp.ApproverGroupIDs); err != nil {
			return p, err
		}
	}
	dur := func(name string, v *string, def time.Duration) (access.Duration, error) {
		if v == nil || *v == "" {
			if def > 0 {
				return access.Duration(def), nil
			}
			return 0, field(name, errors.New("required: an ISO 8601 duration such as PT1H"))
		}
		d, err := access.ParseDuration(*v)
		if err != nil {
			return 0, field(name, err)
		}
		return access.Duration(d), nil
	}
	if p.MaxDuration, err = dur("maxDuration", rp.MaxDuration, 0); err != nil {
		return p, err
	}
	if p.DefaultDuration, err = dur("defaultDuration", rp.DefaultDuration, time.Duration(p.MaxDuration)); err != nil {
		return p, err
	}
	if p.DefaultDuration > p.MaxDuration {
		return p, field("defaultDuration", fmt.Errorf("%s is longer than maxDuration %s", p.DefaultDuration, p.MaxDuration))
	}
	if p.ApprovalTimeout, err = dur("approvalTimeout", rp.ApprovalTimeout, 24*time.Hour); err != nil {
		return p, err
	}
	p.RequireJustification = rp.RequireJustification != nil && *rp.RequireJustification
	p.RequireTicket = rp.RequireTicket != nil && *rp.RequireTicket
	p.Activation = access.ActivationMembership
	if rp.Activation != nil {
		switch *rp.Activation {
		case access.ActivationMembership, access.ActivationPIM, access.ActivationAzureRole:
			p.Activation = *rp.Activation
		default:
			return p, field("activation", fmt.Errorf("%q: must be \"membership\", \"pim\" or \"azure-role\"", *rp.Activation))
		}
	}
	p.RevokeSessionsOnEnd = rp.RevokeSessionsOnEnd == nil || *rp.RevokeSessionsOnEnd
	p.OutOfBand = access.OutOfBandRecord
	if rp.OutOfBand != nil {
		switch *rp.OutOfBand {
		case access.OutOfBandRecord, access.OutOfBandRemove:
			p.OutOfBand = *rp.OutOfBand
		default:
			return p, field("outOfBand", fmt.Errorf("%q: must be \"record\" or \"remove\"", *rp.OutOfBand))
		}
	}
	return p, nil
}

// Profile returns the profile with that name.
func (s *Set) Profile(name string) (access.Profile, bool) {
	p, ok := s.byName[name]
	if !ok || p == nil {
		return access.Profile{}, false
	}
	return *p, true
}

// All returns the profiles in file order.
func (s *Set) All() []access.Profile { return append([]access.Profile(nil), s.list...) }

// ForGroup returns the profiles whose target is groupID.
func (s *Set) ForGroup(groupID string) []access.Profile {
	var out []access.Profile
	for _, p := range s.byGroup[strings.ToLower(groupID)] {
		out = append(out, *p)
	}
	return out
}

// TargetGroups returns every protected group id, once each.
func (s *Set) TargetGroups() []string {
	var out []string
	for _, p := range s.list {
		g := p.TargetGroupID
		if len(s.byGroup[g]) > 0 && s.byGroup[g][0].Name == p.Name {
			out = append(out, g)
		}
	}
	return out
}

// RoleTarget is what azure-role profiles grant: a role at a scope.
type RoleTarget struct {
	// Key is the membership ledger's key (access.RoleTargetKey).
	Key              string
	Scope            string
	RoleDefinitionID string
	Profiles         []access.Profile
}

// RoleTargets returns every (scope, role) the azure-role profiles grant,
// once each, in file order.
func (s *Set) RoleTargets() []RoleTarget {
	var out []RoleTarget
	for _, k := range s.roles {
		ps := s.byRole[k]
		t := RoleTarget{Key: k, Scope: ps[0].Scope, RoleDefinitionID: ps[0].RoleDefinitionID}
		for _, p := range ps {
			t.Profiles = append(t.Profiles, *p)
		}
		out = append(out, t)
	}
	return out
}

// IsTarget reports whether groupID is some profile's target group.
func (s *Set) IsTarget(groupID string) bool { return len(s.byGroup[strings.ToLower(groupID)]) > 0 }
