package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/identitygovernance"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// Graph error codes of PIM for Groups schedule requests that the adapter
// interprets (docs/design.md, Semantics "PIM idempotency"). Every other refusal — policy
// rules (RoleAssignmentRequestPolicyValidationFailed with
// 'The following policy rules failed: ["ExpirationRule"]' or
// '["JustificationRule"]'), an invalid request for a group PIM does not
// manage (InvalidRoleAssignmentRequest) — is fault.ErrPermanent with Graph's
// code and message in the wrapped *APIError.
const (
	CodeRoleAssignmentExists       = "RoleAssignmentExists"
	CodeRoleAssignmentDoesNotExist = "RoleAssignmentDoesNotExist"
	CodePolicyValidationFailed     = "RoleAssignmentRequestPolicyValidationFailed"
	CodeInvalidRequest             = "InvalidRoleAssignmentRequest"
)

// AssignPIM creates a time-bound active PIM for Groups membership of userID
// in groupID (adminAssign, accessId member) starting now and expiring after
// duration, so that PIM removes the member at the end. It returns PIM's
// request id. alreadyAssigned is true (and requestID "") when Graph answers
// RoleAssignmentExists: the user already had an active assignment, to be
// treated like pre-existing access.
func (c *Client) AssignPIM(ctx context.Context, groupID, userID string, duration time.Duration, justification string) (requestID string, alreadyAssigned bool, err error) {
	op := opAssignPIM.name
	if !validKey(groupID) || !validKey(userID) {
		return "", false, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid id"))
	}
	if duration < time.Second {
		return "", false, fault.Wrap(fault.ErrPermanent, "graph "+op, fmt.Errorf("duration %v is under a second", duration))
	}
	var resp models.PrivilegedAccessGroupAssignmentScheduleRequestable
	f := c.call(ctx, opAssignPIM, func(ctx context.Context) error {
		body := c.scheduleRequest(models.ADMINASSIGN_SCHEDULEREQUESTACTIONS, groupID, userID, justification)
		si := models.NewRequestSchedule()
		now := time.Now().UTC()
		si.SetStartDateTime(&now)
		exp := models.NewExpirationPattern()
		typ := models.AFTERDURATION_EXPIRATIONPATTERNTYPE
		exp.SetTypeEscaped(&typ)
		// FromDuration, not ParseISODuration: the latter renders PT3S as "P".
		exp.SetDuration(serialization.FromDuration(duration.Truncate(time.Second)))
		si.SetExpiration(exp)
		body.SetScheduleInfo(si)
		var err error
		resp, err = c.identityGovernance().PrivilegedAccess().Group().AssignmentScheduleRequests().Post(ctx, body, nil)
		return err
	})
	if f != nil {
		if f.code == CodeRoleAssignmentExists {
			return "", true, nil
		}
		return "", false, f.err(op)
	}
	if resp == nil || deref(resp.GetId()) == "" {
		return "", false, fault.Wrap(fault.ErrPermanent, "graph "+op, errors.New("answer without id"))
	}
	return strings.ToLower(deref(resp.GetId())), false, nil
}

// RemovePIM ends userID's active PIM for Groups membership of groupID
// (adminRemove). An assignment that does not exist (RoleAssignmentDoesNotExist)
// is success: it is already gone.
func (c *Client) RemovePIM(ctx context.Context, groupID, userID string) error {
	op := opRemovePIM.name
	if !validKey(groupID) || !validKey(userID) {
		return fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid id"))
	}
	f := c.call(ctx, opRemovePIM, func(ctx context.Context) error {
		body := c.scheduleRequest(models.ADMINREMOVE_SCHEDULEREQUESTACTIONS, groupID, userID, "")
		_, err := c.identityGovernance().PrivilegedAccess().Group().AssignmentScheduleRequests().Post(ctx, body, nil)
		return err
	})
	if f != nil {
		if f.code == CodeRoleAssignmentDoesNotExist {
			return nil
		}
		return f.err(op)
	}
	return nil
}

func (c *Client) scheduleRequest(action models.ScheduleRequestActions, groupID, userID, justification string) *models.PrivilegedAccessGroupAssignmentScheduleRequest {
	body := models.NewPrivilegedAccessGroupAssignmentScheduleRequest()
	body.SetAction(&action)
	acc := models.MEMBER_PRIVILEGEDACCESSGROUPRELATIONSHIPS
	body.SetAccessId(&acc)
	body.SetPrincipalId(&userID)
	body.SetGroupId(&groupID)
	if justification != "" {
		body.SetJustification(&justification)
	}
	return body
}

// PIMEndTime reads when userID's active PIM membership of groupID ends
// (assignmentScheduleInstances). ok is false when there is none; an
// assignment without end (permanent) gives ok true and a zero time. With
// several instances the latest end wins.
func (c *Client) PIMEndTime(ctx context.Context, groupID, userID string) (end time.Time, ok bool, err error) {
	op := opPIMInstances.name
	if !IsGUIDish(groupID) || !IsGUIDish(userID) {
		return time.Time{}, false, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("ids must be GUIDs"))
	}
	filter := fmt.Sprintf("groupId eq '%s' and principalId eq '%s' and accessId eq 'member'", strings.ToLower(groupID), strings.ToLower(userID))
	cfg := &identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetRequestConfiguration{
		QueryParameters: &identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetQueryParameters{Filter: &filter},
	}
	var resp models.PrivilegedAccessGroupAssignmentScheduleInstanceCollectionResponseable
	f := c.call(ctx, opPIMInstances, func(ctx context.Context) error {
		var err error
		resp, err = c.identityGovernance().PrivilegedAccess().Group().AssignmentScheduleInstances().Get(ctx, cfg)
		return err
	})
	if f != nil {
		return time.Time{}, false, f.err(op)
	}
	if resp == nil {
		return time.Time{}, false, nil
	}
	for _, in := range resp.GetValue() {
		if in == nil {
			continue
		}
		if a := in.GetAccessId(); a != nil && *a != models.MEMBER_PRIVILEGEDACCESSGROUPRELATIONSHIPS {
			continue
		}
		e := in.GetEndDateTime()
		if e == nil {
			return time.Time{}, true, nil // permanent
		}
		if !ok || e.After(end) {
			end = e.UTC()
		}
		ok = true
	}
	return end, ok, nil
}

// IsGUIDish reports whether s looks like a GUID (36 characters, hex and
// dashes): ids go into an OData filter, so nothing else is let in.
func IsGUIDish(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F'):
		default:
			return false
		}
	}
	return true
}
