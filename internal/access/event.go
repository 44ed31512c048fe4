package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event types (docs/design.md, The contract (request events)).
const (
	TypeRequested = "jit.access.requested"
	TypeApproved  = "jit.access.approved"
	TypeDenied    = "jit.access.denied"
	TypeCancelled = "jit.access.cancelled"
	TypeRevoked   = "jit.access.revoked"
	TypeExpire    = "jit.access.expire"
)

// Limits on event content. An event over them is rejected, never truncated.
const (
	MaxEventBytes     = 64 << 10
	MaxIDLen          = 128
	MaxIdentityLen    = 256
	MaxProfileLen     = 64
	MaxJustification  = 1024
	MaxTicket         = 256
	MaxComment        = 1024
	maxCloudEventAttr = 256
)

// Event is a decoded, structurally valid CloudEvent of one of the request event
// types (docs/design.md, The contract). Identities are as asserted by the sender; the broker resolves
// them against Entra before the domain decides anything.
type Event struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Source string    `json:"source,omitempty"`
	Time   time.Time `json:"time,omitzero"` // stored, never trusted for timing

	RequestID     string `json:"requestId"`
	Requester     string `json:"requester,omitempty"`
	Profile       string `json:"profile,omitempty"`
	Duration      string `json:"duration,omitempty"`
	Justification string `json:"justification,omitempty"`
	Ticket        string `json:"ticket,omitempty"`
	Approver      string `json:"approver,omitempty"`
	By            string `json:"by,omitempty"`
	Comment       string `json:"comment,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// Actor returns the asserted identity that acts in the event: the requester
// of a request, the approver of an approval or denial, the "by" of a cancel
// or revoke.
func (e Event) Actor() string {
	switch e.Type {
	case TypeRequested:
		return e.Requester
	case TypeApproved, TypeDenied:
		return e.Approver
	case TypeCancelled, TypeRevoked:
		return e.By
	}
	return ""
}

// InvalidError says why an event was rejected. RequestID and EventID are
// filled in when they could be read, so that the rejection can be recorded
// against the request.
type InvalidError struct {
	EventID   string
	Type      string
	RequestID string
	Reason    string
}

func (e *InvalidError) Error() string { return "invalid event: " + e.Reason }

var (
	requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)
	profilePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// identities: an object id (GUID) or a UPN; no spaces or control characters.
	identityPattern = regexp.MustCompile(`^[A-Za-z0-9._%+'#-]+(@[A-Za-z0-9.-]+)?$`)
)

// ValidRequestID reports whether id can be used as a request id (and so as a
// storage key and a URL path segment).
func ValidRequestID(id string) bool { return requestIDPattern.MatchString(id) }

// DecodeEvent parses a structured-mode CloudEvents 1.0 JSON document and
// validates it against docs/design.md, The contract (request events). It never panics; on failure it returns an
// *InvalidError with as much identification as it could read.
func DecodeEvent(body []byte) (Event, error) {
	inv := &InvalidError{}
	fail := func(format string, a ...any) (Event, error) {
		inv.Reason = fmt.Sprintf(format, a...)
		return Event{}, inv
	}
	if len(body) > MaxEventBytes {
		return fail("event is %d bytes, over the limit of %d", len(body), MaxEventBytes)
	}
	if !utf8.Valid(body) {
		return fail("event is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fail("event is not a JSON object")
	}
	if err := checkDepth(trimmed, 16); err != nil {
		return fail("%v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return fail("event is not valid JSON: %s", jsonErr(err))
	}
	str := func(name string) (string, bool, error) {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", true, fmt.Errorf("CloudEvent attribute %q must be a string", name)
		}
		return s, true, nil
	}
	// Identification first, so that later failures can be attributed.
	id, _, err := str("id")
	if err == nil && len(id) <= maxCloudEventAttr && printable(id) {
		inv.EventID = id
	}
	typ, _, err2 := str("type")
	if err2 == nil && len(typ) <= maxCloudEventAttr && printable(typ) {
		inv.Type = typ
	}
	var dataObj map[string]json.RawMessage
	if d, ok := raw["data"]; ok {
		_ = json.Unmarshal(d, &dataObj)
		if dataObj != nil {
			if rid, ok := dataObj["requestId"]; ok {
				var s string
				if json.Unmarshal(rid, &s) == nil && ValidRequestID(s) {
					inv.RequestID = s
				}
			}
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	if err2 != nil {
		return fail("%v", err2)
	}

	spec, _, err := str("specversion")
	if err != nil {
		return fail("%v", err)
	}
	if spec != "1.0" {
		return fail("not a CloudEvent: specversion must be \"1.0\", got %q", clip(spec, 16))
	}
	if id == "" {
		return fail("CloudEvent attribute \"id\" is missing or empty")
	}
	if len(id) > maxCloudEventAttr || !printable(id) {
		return fail("CloudEvent attribute \"id\" is over %d characters or has control characters", maxCloudEventAttr)
	}
	src, _, err := str("source")
	if err != nil {
		return fail("%v", err)
	}
	if src == "" {
		return fail("CloudEvent attribute \"source\" is missing or empty")
	}
	if len(src) > maxCloudEventAttr || !printable(src) {
		return fail("CloudEvent attribute \"source\" is over %d characters or has control characters", maxCloudEventAttr)
	}
	if typ == "" {
		return fail("CloudEvent attribute \"type\" is missing or empty")
	}
	switch typ {
	case TypeRequested, TypeApproved, TypeDenied, TypeCancelled, TypeRevoked, TypeExpire:
	default:
		return fail("unknown event type %q", clip(typ, 64))
	}
	if ct, present, err := str("datacontenttype"); err != nil {
		return fail("%v", err)
	} else if present && ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return fail("datacontenttype must be application/json, got %q", clip(ct, 64))
	}
	if _, ok := raw["data_base64"]; ok {
		return fail("data_base64 is not accepted: send data as a JSON object")
	}
	ev := Event{ID: id, Type: typ, Source: src}
	if ts, present, err := str("time"); err != nil {
		return fail("%v", err)
	} else if present && ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return fail("CloudEvent attribute \"time\" is not an RFC 3339 timestamp")
		}
		ev.Time = t.UTC()
	}
	if dataObj == nil {
		return fail("data is missing or not a JSON object")
	}
	// Every data field must be a string; unknown fields are ignored.
	fields := map[string]*string{
		"requestId": &ev.RequestID, "requester": &ev.Requester, "profile": &ev.Profile,
		"duration": &ev.Duration, "justification": &ev.Justification, "ticket": &ev.Ticket,
		"approver": &ev.Approver, "by": &ev.By, "comment": &ev.Comment, "reason": &ev.Reason,
	}
	for name, dst := range fields {
		v, ok := dataObj[name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fail("data.%s must be a string", name)
		}
	}
	if err := ev.validate(); err != nil {
		return fail("%v", err)
	}
	return ev, nil
}

func (e *Event) validate() error {
	if e.RequestID == "" {
		return errors.New("data.requestId is missing")
	}
	if !ValidRequestID(e.RequestID) {
		return fmt.Errorf("data.requestId must be 1-%d characters of letters, digits and . _ : @ -", MaxIDLen)
	}
	need := func(name, v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("data.%s is missing", name)
		}
		return nil
	}
	identity := func(name, v string) error {
		if err := need(name, v); err != nil {
			return err
		}
		if len(v) > MaxIdentityLen || !identityPattern.MatchString(v) {
			return fmt.Errorf("data.%s is not an object id or a user principal name", name)
		}
		return nil
	}
	text := func(name, v string, max int) error {
		if len(v) > max {
			return fmt.Errorf("data.%s is %d bytes, over the limit of %d", name, len(v), max)
		}
		for _, r := range v {
			if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
				return fmt.Errorf("data.%s contains control characters", name)
			}
		}
		return nil
	}
	var err error
	switch e.Type {
	case TypeRequested:
		err = errors.Join(identity("requester", e.Requester), need("profile", e.Profile))
		if err == nil && !profilePattern.MatchString(e.Profile) {
			err = errors.New("data.profile is not a valid profile name")
		}
		if err == nil && e.Duration != "" {
			_, err = ParseDuration(e.Duration)
			if err != nil {
				err = fmt.Errorf("data.duration: %w", err)
			}
		}
		if err == nil {
			err = errors.Join(text("justification", e.Justification, MaxJustification), text("ticket", e.Ticket, MaxTicket))
		}
	case TypeApproved:
		err = errors.Join(identity("approver", e.Approver), text("comment", e.Comment, MaxComment))
	case TypeDenied:
		err = errors.Join(identity("approver", e.Approver), text("reason", e.Reason, MaxComment))
	case TypeCancelled:
		err = errors.Join(identity("by", e.By), text("reason", e.Reason, MaxComment))
	case TypeRevoked:
		err = errors.Join(identity("by", e.By), text("reason", e.Reason, MaxComment))
	case TypeExpire:
	}
	return err
}

// checkDepth refuses JSON nested deeper than max, before it is unmarshalled.
func checkDepth(b []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("event JSON is nested deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("wrong type for %q", te.Field)
	}
	return "malformed JSON"
}
