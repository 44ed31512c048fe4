package graphsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/simkit"
)

// Audit records: the Sim keeps, for every membership change it makes and for
// PIM's own records, an Entra audit record shaped like those the diagnostic
// setting sends to Event Hubs (see handlers/testdata/audit), so end-to-end
// tests can feed them to the EntraAuditEvents function.

// AuditTenantID is the tenantId written in the records.
const AuditTenantID = "8c2b2f4e-5d5a-4e0b-9f3e-1a2b3c4d5e6f"

// Ids PIM shows up with in real records.
const (
	pimServicePrincipalID = "bdefcbb6-d8b2-497d-a944-b683d9a36b0c" // MS-PIM's service principal in one tenant
	azurePIMUserID        = "9dfd627f-bdc5-4b1c-af9d-c85097fdeff8" // "Azure AD PIM"
)

var pimActor = actor{appName: "MS-PIM", objectID: pimServicePrincipalID}

const (
	auditPIMActivated   = "Add member to role completed (PIM activation)"
	auditPIMExpired     = "Remove member from role (PIM activation expired)"
	auditPIMDeactivated = "Remove member from role completed (PIM deactivate)"
	auditPIMAssigned    = "Add member to role in PIM completed (timebound)"
	auditPIMRemoved     = "Remove member from role in PIM completed (timebound)"
)

// AuditRecords returns the audit records so far as one Event Hubs event
// {"records":[...]}, oldest first.
func (s *Sim) AuditRecords() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"records": s.audit})
	return b
}

// AuditRecordCount is how many audit records the Sim holds.
func (s *Sim) AuditRecordCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.audit)
}

// ResetAudit forgets the audit records.
func (s *Sim) ResetAudit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = nil
}

func (a actor) initiatedBy() map[string]any {
	if a.userID != "" || a.userName != "" {
		var upn any
		if a.upn != "" {
			upn = a.upn
		}
		return map[string]any{"app": nil, "user": map[string]any{
			"id": a.userID, "displayName": nilIfEmpty(a.userName), "userPrincipalName": upn, "ipAddress": nil,
		}}
	}
	// Entra leaves appId null for app-only calls and names the app in
	// additionalDetails AppId (docs/design.md, Semantics); keep that shape.
	return map[string]any{"user": nil, "app": map[string]any{
		"appId": nil, "displayName": nilIfEmpty(a.appName), "servicePrincipalId": nilIfEmpty(a.objectID), "servicePrincipalName": nil,
	}}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Sim) envelope(at time.Time, activity, service, opType, identity string, by actor, targets []map[string]any, details []map[string]any) {
	n := len(s.audit) + 1
	corr := simkit.NewID()
	prefix := "Directory"
	if service == "PIM" {
		prefix = "PIM"
	}
	if details == nil {
		details = []map[string]any{}
	}
	if by.appID != "" && by.userID == "" {
		details = append(details, map[string]any{"key": "AppId", "value": by.appID})
	}
	s.audit = append(s.audit, map[string]any{
		"time":             at.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"resourceId":       "/tenants/" + AuditTenantID + "/providers/Microsoft.aadiam",
		"operationName":    activity,
		"operationVersion": "1.0",
		"category":         "AuditLogs",
		"tenantId":         AuditTenantID,
		"resultSignature":  "None",
		"durationMs":       0,
		"callerIpAddress":  "<null>",
		"correlationId":    corr,
		"identity":         identity,
		"Level":            4,
		"properties": map[string]any{
			"id":                  fmt.Sprintf("%s_%s_SIM_%d", prefix, corr, n),
			"category":            "GroupManagement",
			"correlationId":       corr,
			"result":              "success",
			"resultReason":        "",
			"activityDisplayName": activity,
			"activityDateTime":    at.UTC().Format("2006-01-02T15:04:05.0000000+00:00"),
			"loggedByService":     service,
			"operationType":       opType,
			"initiatedBy":         by.initiatedBy(),
			"targetResources":     targets,
			"additionalDetails":   details,
		},
	})
}

func identityOf(a actor) string {
	switch {
	case a.userName != "":
		return a.userName
	case a.upn != "":
		return a.upn
	}
	return a.appName
}

// auditMembership records a Core Directory add/remove; s.mu is held.
func (s *Sim) auditMembership(at time.Time, add bool, group, member string, by actor) {
	typ := "User"
	upn := any(nil)
	if u := s.t.users[member]; u != nil {
		upn = u.UPN
	} else if s.t.groups[member] != nil {
		typ = "Group"
	}
	gname := ""
	if g := s.t.groups[group]; g != nil {
		gname = g.DisplayName
	}
	q := func(v string) string { return `"` + v + `"` }
	mods := []map[string]any{
		{"displayName": "Group.ObjectID", "oldValue": nil, "newValue": q(group)},
		{"displayName": "Group.DisplayName", "oldValue": nil, "newValue": q(gname)},
	}
	activity, op := "Add member to group", "Assign"
	if !add {
		activity, op = "Remove member from group", "Unassign"
		for _, m := range mods {
			m["oldValue"], m["newValue"] = m["newValue"], nil
		}
	}
	member0 := map[string]any{"id": member, "displayName": nil, "type": typ, "modifiedProperties": mods}
	if typ == "User" {
		member0["userPrincipalName"] = upn
	}
	targets := []map[string]any{
		member0,
		{"id": group, "displayName": nil, "type": "Group", "groupType": "azureAD", "modifiedProperties": []any{}},
	}
	s.envelope(at, activity, "Core Directory", op, identityOf(by), by, targets, nil)
}

// auditPIM records PIM's own record of an assignment change; s.mu is held.
func (s *Sim) auditPIM(at time.Time, activity string, a *PIMAssignment, by actor) {
	upn, gname := any(nil), any(nil)
	if u := s.t.users[a.PrincipalID]; u != nil {
		upn = u.UPN
	}
	if g := s.t.groups[a.GroupID]; g != nil {
		gname = g.DisplayName
	}
	targets := []map[string]any{
		{"id": "00000000-0000-0000-0000-000000000000", "displayName": "Member", "type": "Other", "modifiedProperties": []any{}},
		{"id": a.RequestID, "displayName": nil, "type": "Request", "modifiedProperties": []any{}},
		{"id": a.PrincipalID, "displayName": nil, "type": "User", "userPrincipalName": upn, "modifiedProperties": []any{}},
		{"id": a.GroupID, "displayName": gname, "type": "Group", "modifiedProperties": []any{}},
	}
	details := []map[string]any{
		{"key": "RoleDefinitionOriginId", "value": "member"},
		{"key": "StartTime", "value": a.Start.UTC().Format(time.RFC3339Nano)},
	}
	if !a.End.IsZero() {
		details = append(details, map[string]any{"key": "ExpirationTime", "value": a.End.UTC().Format(time.RFC3339Nano)})
	}
	if a.Justification != "" && strings.Contains(activity, "Add") {
		details = append(details, map[string]any{"key": "Justification", "value": a.Justification})
	}
	details = append(details, map[string]any{"key": "RoleAssignmentRequestId", "value": a.RequestID})
	op := "Add"
	if strings.HasPrefix(activity, "Remove") {
		op = "Delete"
	}
	s.envelope(at, activity, "PIM", op, identityOf(by), by, targets, details)
}
