// Package audit decodes Microsoft Entra audit log records as the tenant's
// diagnostic setting delivers them to Event Hubs (category AuditLogs, each
// event {"records":[...]}) and classifies them for jitaccess: a member added
// to or removed from a target group, a PIM for Groups activation, its end.
//
// It is pure: no I/O, no clock, no Graph SDK. Decode never panics and keeps
// going past bad records; what it could not read comes back as a Problem.
//
// The rules (docs/design.md, The contract (functions) and Semantics): the user and the group are located in
// targetResources by type ("User", "Group"), never by position; records are
// matched on activityDisplayName and loggedByService, not on category (which
// differs between the directory change and PIM's own record of it). The
// activity names are Entra's own (see handlers/testdata/audit/SOURCES.md).
package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Record is one audit record, reduced to what jitaccess reads. Strings are
// as Entra wrote them (ids are not normalised here; Classify does that).
type Record struct {
	// ID is properties.id, unique per record: the dedupe key.
	ID string
	// Time is properties.activityDateTime, else the envelope's time.
	Time time.Time
	// Activity is properties.activityDisplayName, else the envelope's operationName.
	Activity string
	// LoggedByService: "Core Directory", "PIM", ...
	LoggedByService string
	// Category is properties.category (GroupManagement, RoleManagement...);
	// kept for display only, never matched on.
	Category      string
	Result        string // success, failure, ...
	ResultReason  string
	CorrelationID string
	OperationType string
	// EnvelopeCategory is the record's diagnostic category (AuditLogs).
	EnvelopeCategory string
	TenantID         string
	InitiatedBy      InitiatedBy
	Targets          []Target
	Details          []Detail
	// Index is the record's position in its event's records array.
	Index int
}

// InitiatedBy is properties.initiatedBy (user or app).
type InitiatedBy struct {
	UserID          string
	UserPrincipal   string // userPrincipalName
	UserDisplayName string
	AppID           string
	AppDisplayName  string
	// ServicePrincipalID is initiatedBy.app.servicePrincipalId (the object id).
	ServicePrincipalID   string
	ServicePrincipalName string
}

// Target is one entry of properties.targetResources.
type Target struct {
	ID                string
	DisplayName       string
	Type              string // User, Group, ServicePrincipal, Role, Request, Other...
	UserPrincipalName string
	GroupType         string
	Modified          []ModifiedProperty
}

// ModifiedProperty is one of a target's modifiedProperties. Values are the
// raw strings Entra writes (often JSON-encoded: "\"value\"").
type ModifiedProperty struct {
	Name     string
	OldValue string
	NewValue string
}

// Detail is one entry of properties.additionalDetails.
type Detail struct {
	Key   string
	Value string
}

// Detail returns the value of the first additionalDetails entry whose key
// equals key (case-insensitive).
func (r Record) Detail(key string) (string, bool) {
	for _, d := range r.Details {
		if strings.EqualFold(d.Key, key) {
			return d.Value, true
		}
	}
	return "", false
}

// Problem is something Decode could not read. Index is the record's position
// (-1 for the event as a whole); RecordID is set when the record had one.
type Problem struct {
	Index    int
	RecordID string
	Reason   string
}

func (p Problem) String() string {
	switch {
	case p.Index < 0:
		return "event: " + p.Reason
	case p.RecordID != "":
		return fmt.Sprintf("record %d (%s): %s", p.Index, p.RecordID, p.Reason)
	}
	return fmt.Sprintf("record %d: %s", p.Index, p.Reason)
}

// MaxRecords bounds the records read from one event (Event Hubs events are at
// most 1 MB, so a real event holds far fewer).
const MaxRecords = 10000

// Decode reads one Event Hubs event. It accepts the diagnostic envelope
// {"records":[...]} and, for tolerance, a bare array of records or a single
// record. It never panics; records it cannot use are reported as problems
// and skipped, the others are returned in order.
func Decode(event []byte) (records []Record, problems []Problem) {
	defer func() {
		if r := recover(); r != nil { // belt and braces: a bug must not kill the batch
			problems = append(problems, Problem{Index: -1, Reason: fmt.Sprintf("decoder failure: %v", r)})
		}
	}()
	trimmed := bytes.TrimSpace(event)
	if len(trimmed) == 0 {
		return nil, []Problem{{Index: -1, Reason: "empty event"}}
	}
	var top any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, []Problem{{Index: -1, Reason: "not JSON"}}
	}
	if dec.More() {
		return nil, []Problem{{Index: -1, Reason: "not JSON: trailing data"}}
	}
	var items []any
	switch v := top.(type) {
	case []any:
		items = v
	case map[string]any:
		rv, ok := lookup(v, "records")
		switch {
		case ok:
			arr, isArr := rv.([]any)
			if !isArr {
				return nil, []Problem{{Index: -1, Reason: "records is not an array"}}
			}
			items = arr
		case hasAny(v, "properties", "operationName"):
			items = []any{v}
		default:
			return nil, []Problem{{Index: -1, Reason: "no records"}}
		}
	default:
		return nil, []Problem{{Index: -1, Reason: "not a JSON object"}}
	}
	if len(items) > MaxRecords {
		problems = append(problems, Problem{Index: -1, Reason: fmt.Sprintf("%d records, only the first %d read", len(items), MaxRecords)})
		items = items[:MaxRecords]
	}
	for i, it := range items {
		rec, reason := decodeRecord(it)
		rec.Index = i
		if reason != "" {
			problems = append(problems, Problem{Index: i, RecordID: rec.ID, Reason: reason})
			continue
		}
		records = append(records, rec)
	}
	return records, problems
}

func decodeRecord(v any) (Record, string) {
	m, ok := v.(map[string]any)
	if !ok {
		return Record{}, "record is not an object"
	}
	var r Record
	r.EnvelopeCategory = str(m, "category")
	r.TenantID = str(m, "tenantId")
	pv, _ := lookup(m, "properties")
	p, ok := pv.(map[string]any)
	if !ok {
		return r, "record has no properties object"
	}
	r.ID = str(p, "id")
	r.Activity = str(p, "activityDisplayName")
	if r.Activity == "" {
		r.Activity = str(m, "operationName")
	}
	r.LoggedByService = str(p, "loggedByService")
	r.Category = str(p, "category")
	r.Result = str(p, "result")
	r.ResultReason = str(p, "resultReason")
	r.CorrelationID = str(p, "correlationId")
	if r.CorrelationID == "" {
		r.CorrelationID = str(m, "correlationId")
	}
	r.OperationType = str(p, "operationType")
	if t, ok := parseTime(str(p, "activityDateTime")); ok {
		r.Time = t
	} else if t, ok := parseTime(str(m, "time")); ok {
		r.Time = t
	}
	if ib, ok := obj(p, "initiatedBy"); ok {
		if u, ok := obj(ib, "user"); ok {
			r.InitiatedBy.UserID = str(u, "id")
			r.InitiatedBy.UserPrincipal = str(u, "userPrincipalName")
			r.InitiatedBy.UserDisplayName = str(u, "displayName")
		}
		if a, ok := obj(ib, "app"); ok {
			r.InitiatedBy.AppID = str(a, "appId")
			r.InitiatedBy.AppDisplayName = str(a, "displayName")
			r.InitiatedBy.ServicePrincipalID = str(a, "servicePrincipalId")
			r.InitiatedBy.ServicePrincipalName = str(a, "servicePrincipalName")
		}
	}
	if tv, ok := lookup(p, "targetResources"); ok {
		arr, _ := tv.([]any)
		for _, t := range arr {
			tm, ok := t.(map[string]any)
			if !ok {
				continue
			}
			tr := Target{
				ID:                str(tm, "id"),
				DisplayName:       str(tm, "displayName"),
				Type:              str(tm, "type"),
				UserPrincipalName: str(tm, "userPrincipalName"),
				GroupType:         str(tm, "groupType"),
			}
			if mv, ok := lookup(tm, "modifiedProperties"); ok {
				mps, _ := mv.([]any)
				for _, mp := range mps {
					mpm, ok := mp.(map[string]any)
					if !ok {
						continue
					}
					tr.Modified = append(tr.Modified, ModifiedProperty{
						Name: str(mpm, "displayName"), OldValue: str(mpm, "oldValue"), NewValue: str(mpm, "newValue"),
					})
				}
			}
			r.Targets = append(r.Targets, tr)
		}
	}
	if dv, ok := lookup(p, "additionalDetails"); ok {
		arr, _ := dv.([]any)
		for _, d := range arr {
			dm, ok := d.(map[string]any)
			if !ok {
				continue
			}
			r.Details = append(r.Details, Detail{Key: str(dm, "key"), Value: str(dm, "value")})
		}
	}
	if r.Activity == "" {
		return r, "record has no activityDisplayName"
	}
	return r, ""
}

// lookup finds key exactly, else case-insensitively (the envelope writes
// both "level" and "Level").
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func hasAny(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := lookup(m, k); ok {
			return true
		}
	}
	return false
}

func obj(m map[string]any, key string) (map[string]any, bool) {
	v, _ := lookup(m, key)
	o, ok := v.(map[string]any)
	return o, ok
}

// str reads a scalar as a string: strings as they are, numbers and booleans
// in their JSON text, null and anything else as "".
func str(m map[string]any, key string) string {
	v, _ := lookup(m, key)
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.9999999",
	"2006-01-02T15:04:05.9999999Z07:00",
	"2006-01-02 15:04:05.9999999Z07:00",
	"2006-01-02 15:04:05.9999999",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 3:04:05 PM -07:00",
}

// parseTime reads the time formats Entra uses in records and in
// additionalDetails values (RFC 3339 with up to 7 fractional digits,
// sometimes without zone, which is then UTC). The result is in UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
