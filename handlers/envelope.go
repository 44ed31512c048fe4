package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How the host builds a non-HTTP invocation (azure-functions-host,
// src/WebJobs.Script/Workers/MessageExtensions/ScriptInvocationContextExtensions.cs,
// see testdata/README.md):
//
//   - Data[<binding name>] = GetHttpScriptInvocationContextValue(value): an
//     object becomes a JSON object (the timer's TimerInfo); anything else —
//     a string (the Service Bus body), a string[] (an Event Hubs batch with
//     dataType string) — goes through JsonConvert.SerializeObject and so
//     arrives as a JSON string holding JSON: the body is encoded twice.
//   - Metadata[<key>] likewise: strings and numbers are JSON-encoded into a
//     string ("MessageId":"\"abc\"", "DeliveryCount":"1"), dates are
//     re-parsed from their text (second precision), objects stay objects.
//   - Utility.ApplyBindingData copies the top-level keys of a JSON body into
//     the binding data (case-insensitively, so a body key can overwrite a
//     real metadata value): only Data is trusted for the event. The
//     metadata feeds the logs and the redelivery patience (DeliveryCount,
//     accessrequests.go): a forged value can at most make the handler retry
//     a transient failure within the invocation, or answer it at once.

// envelope is the host's invocation request (HttpScriptInvocationContext).
type envelope struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// readInvocation reads the request body within the size limit and decodes
// the envelope. env is nil when the body is not an envelope; problem is set
// when the body could not be read at all (then raw is nil).
func (s *server) readInvocation(r *http.Request) (raw []byte, env *envelope, problem string) {
	body := http.MaxBytesReader(nil, r.Body, s.d.MaxInvocationBytes)
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, fmt.Sprintf("the invocation is over the limit of %d bytes", s.d.MaxInvocationBytes)
		}
		return nil, nil, "the invocation request could not be read"
	}
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil || e.Data == nil {
		return raw, nil, ""
	}
	return raw, &e, ""
}

// binding returns Data[name] (exact, then case-insensitive, then the only
// entry).
func (e *envelope) binding(name string) (json.RawMessage, bool) {
	if v, ok := e.Data[name]; ok {
		return v, true
	}
	for k, v := range e.Data {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	if len(e.Data) == 1 {
		for _, v := range e.Data {
			return v, true
		}
	}
	return nil, false
}

// maxUnwrap bounds the levels of JSON string encoding peeled off a value: the
// host adds one, a sender that put a JSON string on the queue (the portal,
// an AMQP string body) adds another.
const maxUnwrap = 4

// unwrapBody peels JSON string encodings off v until a JSON object appears.
// ok is false when no object was found; body is then the innermost text (or
// v itself), to be handed on as raw bytes and recorded as rejected.
func unwrapBody(v []byte) (body []byte, ok bool) {
	cur := bytes.TrimSpace(v)
	for range maxUnwrap {
		if len(cur) == 0 {
			return cur, false
		}
		switch cur[0] {
		case '{':
			return cur, true
		case '"':
			var s string
			if json.Unmarshal(cur, &s) != nil {
				return cur, false
			}
			next := bytes.TrimSpace([]byte(s))
			if len(next) > 0 && (next[0] == '{' || next[0] == '"') {
				cur = next
				continue
			}
			// A byte[] value with dataType string arrives as base64.
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				if tb := bytes.TrimSpace(b); len(tb) > 0 && (tb[0] == '{' || tb[0] == '"') {
					cur = tb
					continue
				}
			}
			return []byte(s), false
		default:
			return cur, false
		}
	}
	return cur, len(cur) > 0 && cur[0] == '{'
}

// unwrapArray peels JSON string encodings off v until a JSON array appears
// and returns its elements: string elements as their text, others as raw
// JSON.
func unwrapArray(v []byte) ([][]byte, error) {
	cur := bytes.TrimSpace(v)
	for range maxUnwrap {
		if len(cur) == 0 {
			return nil, errors.New("empty value")
		}
		switch cur[0] {
		case '[':
			var elems []json.RawMessage
			if err := json.Unmarshal(cur, &elems); err != nil {
				return nil, errors.New("not a JSON array")
			}
			out := make([][]byte, 0, len(elems))
			for _, el := range elems {
				var s string
				if len(el) > 0 && el[0] == '"' && json.Unmarshal(el, &s) == nil {
					out = append(out, []byte(s))
					continue
				}
				out = append(out, []byte(el))
			}
			return out, nil
		case '"':
			var s string
			if json.Unmarshal(cur, &s) != nil {
				return nil, errors.New("not a JSON string")
			}
			cur = bytes.TrimSpace([]byte(s))
		default:
			return nil, errors.New("not a JSON array")
		}
	}
	return nil, errors.New("encoded too deeply")
}

// meta returns the text of Metadata[key] (exact, then case-insensitive) with
// its JSON string encodings peeled off.
func (e *envelope) meta(key string) (string, bool) {
	if e == nil {
		return "", false
	}
	v, ok := e.Metadata[key]
	if !ok {
		for k, x := range e.Metadata {
			if strings.EqualFold(k, key) {
				v, ok = x, true
				break
			}
		}
	}
	if !ok {
		return "", false
	}
	cur := bytes.TrimSpace(v)
	for range maxUnwrap {
		if len(cur) == 0 || cur[0] != '"' {
			break
		}
		var s string
		if json.Unmarshal(cur, &s) != nil {
			break
		}
		cur = bytes.TrimSpace([]byte(s))
	}
	if string(cur) == "null" {
		return "", false
	}
	return string(cur), true
}

func (e *envelope) metaInt(key string) int {
	s, ok := e.meta(key)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// metaTime parses the host's date renderings; a time without zone is UTC.
func (e *envelope) metaTime(key string) time.Time {
	s, ok := e.meta(key)
	if !ok {
		return time.Time{}
	}
	return parseHostTime(s)
}

var hostTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.9999999",
	"2006-01-02T15:04:05",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 15:04:05",
	"01/02/2006 15:04:05",
}

func parseHostTime(s string) time.Time {
	for _, l := range hostTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// metaObject decodes Metadata[key] (an object, possibly string-encoded) into v.
func (e *envelope) metaObject(key string, v any) bool {
	s, ok := e.meta(key)
	if !ok {
		return false
	}
	return json.Unmarshal([]byte(s), v) == nil
}
