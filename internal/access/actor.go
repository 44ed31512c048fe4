package access

// Actor is an asserted identity after the broker resolved it against Entra:
// the domain compares object ids only, never the asserted strings.
type Actor struct {
	// Asserted is the identity as the event gave it (object id or UPN).
	Asserted string `json:"asserted"`
	// ID is the Entra object id; empty when the user was not found.
	ID  string `json:"id,omitempty"`
	UPN string `json:"upn,omitempty"`
	// Found: the directory knows the user.
	Found bool `json:"found"`
	// Enabled: accountEnabled is true.
	Enabled bool `json:"enabled"`
	// Guest: userType is Guest.
	Guest bool `json:"guest,omitempty"`
	// InGroups: a transitive member of the groups that matter for the role
	// (eligible groups for a requester, approver groups for an approver).
	InGroups bool `json:"inGroups"`
}

// Label is how the actor is shown in history: the UPN when known, else the
// object id, else what was asserted.
func (a Actor) Label() string {
	switch {
	case a.UPN != "":
		return a.UPN
	case a.ID != "":
		return a.ID
	}
	return a.Asserted
}
