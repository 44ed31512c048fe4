package audit

import (
	"regexp"
	"strings"
	"time"
)

// Entra's activity names (activityDisplayName) that jitaccess acts on, with
// the service that logs them. Sources: handlers/testdata/audit/SOURCES.md.
const (
	ServiceCoreDirectory = "Core Directory"
	ServicePIM           = "PIM"

	// Core Directory: the membership change itself, whoever made it (a user,
	// an app such as jitaccess, or PIM acting as the app "MS-PIM").
	ActivityAddMember    = "Add member to group"
	ActivityRemoveMember = "Remove member from group"

	// PIM for Groups (PIM names the group's member/owner relationship a
	// "role"; category GroupManagement): a user's own activation, its natural
	// end, the user ending it early.
	ActivityPIMActivated   = "Add member to role completed (PIM activation)"
	ActivityPIMExpired     = "Remove member from role (PIM activation expired)"
	ActivityPIMDeactivated = "Remove member from role completed (PIM deactivate)"
	// PIM for Groups: an administrator's (or an app's adminAssign /
	// adminRemove) time-bound or permanent active assignment.
	ActivityPIMAssignedTimebound  = "Add member to role in PIM completed (timebound)"
	ActivityPIMAssignedPermanent  = "Add member to role in PIM completed (permanent)"
	ActivityPIMRemovedTimebound   = "Remove member from role in PIM completed (timebound)"
	ActivityPIMRemovedPermanent   = "Remove member from role in PIM completed (permanent)"
	PIMAppDisplayName             = "MS-PIM"
	PIMAppID                      = "01fc33a7-78ba-4d2f-a4b7-768e336e890e"
	detailAppID                   = "AppId"
	detailExpiration              = "ExpirationTime"
	detailStart                   = "StartTime"
	detailRoleAssignmentRequestID = "RoleAssignmentRequestId"
	detailRequestID               = "RequestId"
)

// Kind is what a record means for a target group.
type Kind string

const (
	Ignore        Kind = "ignore"         // another activity, another group, a failed operation
	MemberAdded   Kind = "member-added"   // Core Directory "Add member to group"
	MemberRemoved Kind = "member-removed" // Core Directory "Remove member from group"
	PIMActivated  Kind = "pim-activated"  // PIM made the user an active member
	PIMEnded      Kind = "pim-ended"      // PIM ended it (expired, deactivated or removed)
)

// Initiator says who made the change (docs/design.md, Semantics "Own changes").
type Initiator string

const (
	BySelf  Initiator = "self"  // jitaccess itself
	ByPIM   Initiator = "pim"   // PIM (MS-PIM app, or a record logged by PIM)
	ByOther Initiator = "other" // anyone else: out-of-band
)

// Self is who jitaccess is: its application (client) id and its service
// principal object id (lower-case GUIDs; either may be empty).
type Self struct {
	AppID    string
	ObjectID string
}

// Actor is who initiated a record, as far as Entra says.
type Actor struct {
	UserID             string
	UPN                string
	AppID              string
	AppName            string
	ServicePrincipalID string
}

// String is a short label: the UPN, the user id, the app id, the service
// principal id or the app name, whichever is known first.
func (a Actor) String() string {
	switch {
	case a.UPN != "":
		return a.UPN
	case a.UserID != "":
		return a.UserID
	case a.AppID != "":
		return "app:" + a.AppID
	case a.ServicePrincipalID != "":
		return "sp:" + a.ServicePrincipalID
	case a.AppName != "":
		return "app:" + a.AppName
	}
	return ""
}

// Finding is what Classify made of one record.
type Finding struct {
	Kind Kind
	// Problem is set (and Kind is Ignore) when the record is about a target
	// group but cannot be used: an id that is not a GUID, no user target.
	Problem string
	// GroupID and UserID are lower-case GUIDs.
	GroupID string
	UserID  string
	UserUPN string
	// Initiator and Actor: who made the change.
	Initiator Initiator
	Actor     Actor
	// Deactivated: for PIMEnded, the user ended the activation early (as
	// opposed to expiry or an administrator's removal).
	Deactivated bool
	// AdminAssignment: for PIMActivated / PIMEnded, an administrator's (or an
	// app's) PIM assignment or removal rather than the user's activation.
	AdminAssignment bool
	// PIMRequestID is PIM's request id (additionalDetails
	// RoleAssignmentRequestId), lower case; "" when absent.
	PIMRequestID string
	// StartTime and ExpirationTime from additionalDetails, when present.
	StartTime      time.Time
	ExpirationTime time.Time
	// RecordID is the record's id (dedupe); At its activity time.
	RecordID string
	At       time.Time
	Activity string
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s is a GUID in its 36-character form.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

type activity struct {
	service     string
	kind        Kind
	deactivated bool
	admin       bool
}

var activities = map[string]activity{
	strings.ToLower(ActivityAddMember):            {ServiceCoreDirectory, MemberAdded, false, false},
	strings.ToLower(ActivityRemoveMember):         {ServiceCoreDirectory, MemberRemoved, false, false},
	strings.ToLower(ActivityPIMActivated):         {ServicePIM, PIMActivated, false, false},
	strings.ToLower(ActivityPIMExpired):           {ServicePIM, PIMEnded, false, false},
	strings.ToLower(ActivityPIMDeactivated):       {ServicePIM, PIMEnded, true, false},
	strings.ToLower(ActivityPIMAssignedTimebound): {ServicePIM, PIMActivated, false, true},
	strings.ToLower(ActivityPIMAssignedPermanent): {ServicePIM, PIMActivated, false, true},
	strings.ToLower(ActivityPIMRemovedTimebound):  {ServicePIM, PIMEnded, false, true},
	strings.ToLower(ActivityPIMRemovedPermanent):  {ServicePIM, PIMEnded, false, true},
}

// Classify says what rec means for jitaccess. isTarget reports whether a
// (lower-case) group id is a profile's target group; a nil isTarget treats
// every group as a target. Only successful records of the activities above,
// logged by the expected service, about a target group, count; everything
// else is Ignore. A record about a target group whose ids are not GUIDs is
// Ignore with Problem set.
func Classify(rec Record, self Self, isTarget func(groupID string) bool) Finding {
	f := Finding{Kind: Ignore, RecordID: rec.ID, At: rec.Time, Activity: rec.Activity}
	a, ok := activities[strings.ToLower(strings.TrimSpace(rec.Activity))]
	if !ok || !strings.EqualFold(strings.TrimSpace(rec.LoggedByService), a.service) {
		return f
	}
	if res := strings.TrimSpace(rec.Result); res != "" && !strings.EqualFold(res, "success") {
		return f
	}
	group, ok := groupOf(rec, a.kind, isTarget)
	if !ok {
		return f
	}
	if !IsGUID(group) {
		f.Problem = "group id is not a GUID"
		return f
	}
	group = strings.ToLower(group)
	if isTarget != nil && !isTarget(group) {
		return f
	}
	f.GroupID = group
	user, ok := targetOfType(rec, "User", nil)
	if !ok {
		f.Problem = "no user among the target resources"
		return f
	}
	if !IsGUID(user.ID) {
		f.Problem = "user id is not a GUID"
		return f
	}
	f.UserID = strings.ToLower(user.ID)
	f.UserUPN = user.UserPrincipalName
	f.Actor = Actor{
		UserID:             strings.ToLower(rec.InitiatedBy.UserID),
		UPN:                rec.InitiatedBy.UserPrincipal,
		AppID:              strings.ToLower(rec.InitiatedBy.AppID),
		AppName:            rec.InitiatedBy.AppDisplayName,
		ServicePrincipalID: strings.ToLower(rec.InitiatedBy.ServicePrincipalID),
	}
	if f.Actor.AppID == "" && f.Actor.UserID == "" {
		if v, ok := rec.Detail(detailAppID); ok && IsGUID(strings.TrimSpace(v)) {
			f.Actor.AppID = strings.ToLower(strings.TrimSpace(v))
		}
	}
	f.Initiator = initiator(rec, f.Actor, self)
	f.Kind = a.kind
	f.Deactivated = a.deactivated
	f.AdminAssignment = a.admin
	if a.kind == PIMActivated || a.kind == PIMEnded {
		f.PIMRequestID = requestID(rec)
	}
	if v, ok := rec.Detail(detailExpiration); ok {
		f.ExpirationTime, _ = parseTime(v)
	}
	if v, ok := rec.Detail(detailStart); ok {
		f.StartTime, _ = parseTime(v)
	}
	return f
}

// groupOf locates the group: a target of type Group (the target one when
// there are several, e.g. a nested group added to a group), else the user
// target's Group.ObjectID modified property (new value on add, old on
// remove). ok is false when the record names no group at all.
func groupOf(rec Record, k Kind, isTarget func(string) bool) (string, bool) {
	var match func(string) bool
	if isTarget != nil {
		match = func(id string) bool { return IsGUID(id) && isTarget(strings.ToLower(id)) }
	}
	if t, ok := targetOfType(rec, "Group", match); ok {
		return strings.TrimSpace(t.ID), true
	}
	if t, ok := targetOfType(rec, "Group", nil); ok {
		return strings.TrimSpace(t.ID), true
	}
	for _, t := range rec.Targets {
		if !strings.EqualFold(t.Type, "User") {
			continue
		}
		for _, mp := range t.Modified {
			if !strings.EqualFold(mp.Name, "Group.ObjectID") {
				continue
			}
			v := mp.NewValue
			if k == MemberRemoved || k == PIMEnded || v == "" {
				if mp.OldValue != "" {
					v = mp.OldValue
				}
			}
			if v = unquote(v); v != "" {
				return v, true
			}
		}
	}
	return "", false
}

// targetOfType returns the first target of type typ (case-insensitive) for
// which match (if any) holds.
func targetOfType(rec Record, typ string, match func(id string) bool) (Target, bool) {
	for _, t := range rec.Targets {
		if strings.EqualFold(strings.TrimSpace(t.Type), typ) && (match == nil || match(strings.TrimSpace(t.ID))) {
			t.ID = strings.TrimSpace(t.ID)
			return t, true
		}
	}
	return Target{}, false
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(strings.Trim(s, `"`))
}

func initiator(rec Record, a Actor, self Self) Initiator {
	appID := strings.ToLower(strings.TrimSpace(self.AppID))
	objID := strings.ToLower(strings.TrimSpace(self.ObjectID))
	switch {
	case appID != "" && a.AppID == appID:
		return BySelf
	case objID != "" && a.ServicePrincipalID == objID:
		return BySelf
	case strings.EqualFold(a.AppName, PIMAppDisplayName), a.AppID == PIMAppID,
		strings.EqualFold(strings.TrimSpace(rec.LoggedByService), ServicePIM):
		return ByPIM
	}
	return ByOther
}

// requestID finds PIM's request id: additionalDetails RoleAssignmentRequestId
// (or RequestId), else a target of type Request. Only GUIDs are returned.
func requestID(rec Record) string {
	for _, k := range []string{detailRoleAssignmentRequestID, detailRequestID} {
		if v, ok := rec.Detail(k); ok && IsGUID(strings.TrimSpace(v)) {
			return strings.ToLower(strings.TrimSpace(v))
		}
	}
	if t, ok := targetOfType(rec, "Request", nil); ok && IsGUID(t.ID) {
		return strings.ToLower(t.ID)
	}
	return ""
}
