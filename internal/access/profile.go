package access

import "time"

// Activation modes (DESIGN §5).
const (
	ActivationMembership = "membership"
	ActivationPIM        = "pim"
)

// Out-of-band handling (DESIGN §5).
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
}

// Max returns the maximum duration as a time.Duration.
func (p Profile) Max() time.Duration { return time.Duration(p.MaxDuration) }
