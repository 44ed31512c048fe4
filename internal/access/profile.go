package access

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// RoleTargetKey is the ledger key of an azure-role target: "role-" and a
// hash of the scope and the role definition (both case-insensitive), so
// that it is a valid storage key whatever the scope's characters.
func RoleTargetKey(scope, roleDefinitionID string) string {
	h := sha256.Sum256([]byte(strings.ToLower(scope) + "|" + strings.ToLower(roleGUID(roleDefinitionID))))
	return "role-" + hex.EncodeToString(h[:16])
}

// roleGUID is the role definition's GUID (the last path segment of a full
// id, or the GUID itself).
func roleGUID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// Activation modes (docs/design.md, The contract (profiles)).
const (
	ActivationMembership = "membership"
	ActivationPIM        = "pim"
	// ActivationAzureRole: an Azure role assignment to the requester at the
	// profile's Scope (an AKS cluster or a namespace in it), evaluated by
	// Azure RBAC on each authorization, so its removal ends cluster access
	// within minutes (docs/design.md, The contract (profiles)).
	ActivationAzureRole = "azure-role"
)

// Out-of-band handling (docs/design.md, The contract (profiles)).
const (
	OutOfBandRecord = "record"
	OutOfBandRemove = "remove"
)

// Profile is one entry of profiles.json, already validated by package policy.
type Profile struct {
	Name                 string   `json:"name"`
	TargetGroupID        string   `json:"targetGroupId"`
	EligibleGroupIDs     []string `json:"eligibleGroupIds"`
	ApproverGroupIDs     []string `json:"approverGroupIds"`
	ApprovalsRequired    int      `json:"approvalsRequired"`
	DefaultDuration      Duration `json:"defaultDuration"`
	MaxDuration          Duration `json:"maxDuration"`
	ApprovalTimeout      Duration `json:"approvalTimeout"`
	RequireJustification bool     `json:"requireJustification"`
	RequireTicket        bool     `json:"requireTicket"`
	Activation           string   `json:"activation"`
	RevokeSessionsOnEnd  bool     `json:"revokeSessionsOnEnd"`
	OutOfBand            string   `json:"outOfBand"`
	// Scope and RoleDefinitionID: the azure-role target (TargetGroupID is
	// then empty).
	Scope            string `json:"scope,omitempty"`
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
}

// TargetKey is the membership ledger's key for what profile p grants: the
// target group's id, or for azure-role a key of the scope and role (see
// RoleTargetKey).
func (p Profile) TargetKey() string {
	if p.Activation == ActivationAzureRole {
		return RoleTargetKey(p.Scope, p.RoleDefinitionID)
	}
	return p.TargetGroupID
}

// Max returns the maximum duration as a time.Duration.
func (p Profile) Max() time.Duration { return time.Duration(p.MaxDuration) }
