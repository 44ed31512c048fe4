package devhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The invocation payloads below reproduce what azure-functions-host builds
// (ScriptInvocationContextExtensions.ToHttpScriptInvocationContext; see
// handlers/testdata/README.md): values that are not objects go through
// JsonConvert.SerializeObject (so strings arrive JSON-encoded inside a JSON
// string), dates are rendered without zone at second precision, objects stay
// objects, and the top-level keys of a JSON message body are copied into the
// metadata (Utility.ApplyBindingData), case-insensitively overwriting.

// ser is JsonConvert.SerializeObject of a non-object value: its JSON text.
func ser(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// netDate is how a DateTime reaches the metadata: DateTime.Parse(ToString())
// loses the fraction and the zone.
func netDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// netOffsetDate is a DateTimeOffset / DateTime with kind, as Json.NET writes it.
func netOffsetDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000-07:00") }

// orderedMeta is a case-insensitive dictionary that keeps the first key's
// spelling, like .NET's Dictionary(StringComparer.OrdinalIgnoreCase).
type orderedMeta struct {
	keys []string
	vals map[string]any
}

func newMeta() *orderedMeta { return &orderedMeta{vals: map[string]any{}} }

func (m *orderedMeta) set(k string, v any) {
	for _, existing := range m.keys {
		if strings.EqualFold(existing, k) {
			m.vals[existing] = v
			return
		}
	}
	m.keys = append(m.keys, k)
	m.vals[k] = v
}

func (m *orderedMeta) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(k))
		b.WriteByte(':')
		b.Write(marshal(m.vals[k]))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func sysMeta(function string, now time.Time) map[string]any {
	return map[string]any{"MethodName": function, "UtcNow": now.UTC().Format("2006-01-02T15:04:05.0000000Z"), "RandGuid": uuid.NewString()}
}

// Message is a Service Bus message as the stand-in holds it.
type Message struct {
	MessageID      string    `json:"messageId"`
	SequenceNumber int64     `json:"sequenceNumber"`
	Body           []byte    `json:"-"`
	ContentType    string    `json:"contentType,omitempty"`
	EnqueuedTime   time.Time `json:"enqueuedTime"`
	DeliveryCount  int       `json:"deliveryCount"`
}

// ServiceBusPayload builds the invocation request for a serviceBusTrigger
// binding named binding (the body JSON-encoded twice in Data).
func ServiceBusPayload(function, binding, namespace string, m Message, now time.Time) []byte {
	meta := newMeta()
	meta.set("MessageActions", map[string]any{})
	meta.set("SessionActions", map[string]any{})
	meta.set("Client", map[string]any{"FullyQualifiedNamespace": namespace, "IsClosed": false, "TransportType": 0, "Identifier": "devhost"})
	meta.set("ReceiveActions", map[string]any{})
	meta.set("DeliveryCount", ser(m.DeliveryCount))
	meta.set("LockToken", ser(uuid.NewString()))
	meta.set("ExpiresAtUtc", netDate(m.EnqueuedTime.Add(14*24*time.Hour)))
	meta.set("ExpiresAt", netOffsetDate(m.EnqueuedTime.Add(14*24*time.Hour)))
	meta.set("EnqueuedTimeUtc", netDate(m.EnqueuedTime))
	meta.set("EnqueuedTime", netOffsetDate(m.EnqueuedTime))
	meta.set("MessageId", ser(m.MessageID))
	if m.ContentType != "" {
		meta.set("ContentType", ser(m.ContentType))
	}
	meta.set("SequenceNumber", ser(m.SequenceNumber))
	meta.set("ApplicationProperties", map[string]any{})
	meta.set("UserProperties", map[string]any{})
	copyBodyKeys(meta, m.Body)
	meta.set("sys", sysMeta(function, now))
	return marshal(map[string]any{
		"Data":     map[string]any{binding: ser(string(m.Body))},
		"Metadata": meta,
	})
}

// copyBodyKeys is Utility.ApplyBindingData: top-level non-array properties
// of a JSON object body; objects as objects, the rest as (string) values —
// dates lossy — JSON-encoded.
func copyBodyKeys(meta *orderedMeta, body []byte) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' || t[len(t)-1] != '}' {
		return
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil {
		return
	}
	for k, v := range obj {
		v = bytes.TrimSpace(v)
		if len(v) == 0 {
			continue
		}
		switch v[0] {
		case '[':
			continue
		case '{':
			meta.set(k, json.RawMessage(v))
		case 'n':
			continue // null: not added
		case '"':
			var s string
			_ = json.Unmarshal(v, &s)
			if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
				s = tm.UTC().Format("01/02/2006 15:04:05")
			}
			meta.set(k, ser(s))
		case 't':
			meta.set(k, ser("True"))
		case 'f':
			meta.set(k, ser("False"))
		default:
			meta.set(k, ser(string(v)))
		}
	}
}

// TimerPayload builds the invocation request for a timerTrigger binding:
// TimerInfo through JObject.FromObject.
func TimerPayload(function, binding string, last, next, now time.Time, pastDue bool) []byte {
	status := map[string]any{"Last": netOffsetDate(last), "Next": netOffsetDate(next), "LastUpdated": netOffsetDate(now)}
	if last.IsZero() {
		status["Last"] = "0001-01-01T00:00:00"
	}
	return marshal(map[string]any{
		"Data": map[string]any{binding: map[string]any{
			"Schedule":       map[string]any{"AdjustForDST": true},
			"ScheduleStatus": status,
			"IsPastDue":      pastDue,
		}},
		"Metadata": map[string]any{"sys": sysMeta(function, now)},
	})
}

// EventHubPayload builds the invocation request for an eventHubTrigger with
// cardinality many and dataType string: Data holds a JSON string holding the
// array of event strings.
func EventHubPayload(function, binding, namespace, hub string, events []string, firstSeq int64, retryCount, maxRetry int, withRetry bool, now time.Time) []byte {
	n := len(events)
	seqs := make([]int64, n)
	offsets := make([]string, n)
	times := make([]string, n)
	keys := make([]any, n)
	props := make([]map[string]any, n)
	sysProps := make([]map[string]any, n)
	for i := range n {
		seqs[i] = firstSeq + int64(i)
		offsets[i] = ser(seqs[i] * 1024)
		times[i] = now.UTC().Format(time.RFC3339)
		props[i] = map[string]any{}
		sysProps[i] = map[string]any{"x-opt-sequence-number": seqs[i]}
	}
	pc := map[string]any{"FullyQualifiedNamespace": namespace, "EventHubName": hub, "ConsumerGroup": "$Default", "PartitionId": "0"}
	meta := map[string]any{
		"PartitionContext":        pc,
		"TriggerPartitionContext": pc,
		"PartitionKeyArray":       ser(keys),
		"OffsetArray":             ser(offsets),
		"SequenceNumberArray":     ser(seqs),
		"EnqueuedTimeUtcArray":    ser(times),
		"PropertiesArray":         ser(props),
		"SystemPropertiesArray":   ser(sysProps),
		"sys":                     sysMeta(function, now),
	}
	if withRetry {
		meta["RetryContext"] = map[string]any{"RetryCount": retryCount, "MaxRetryCount": maxRetry, "Exception": nil}
	}
	if events == nil {
		events = []string{}
	}
	return marshal(map[string]any{"Data": map[string]any{binding: ser(events)}, "Metadata": meta})
}
