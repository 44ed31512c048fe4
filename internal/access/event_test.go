package access

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// ce builds a structured CloudEvent body; attrs override or (with nil) remove
// attributes of a valid envelope.
func ce(typ string, data any, attrs map[string]any) []byte {
	m := map[string]any{
		"specversion": "1.0",
		"id":          "ev-1",
		"source":      "/tests",
		"type":        typ,
		"data":        data,
	}
	for k, v := range attrs {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func reqData(extra map[string]any) map[string]any {
	d := map[string]any{
		"requestId":     "r-1",
		"requester":     "n01@contoso.com",
		"profile":       "aks-admin",
		"duration":      "PT1H",
		"justification": "incident 42",
		"ticket":        "INC-42",
	}
	for k, v := range extra {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = v
	}
	return d
}

func TestDecodeEventValid(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want Event
	}{
		{"requested", ce(TypeRequested, reqData(nil), map[string]any{"time": "2025-01-02T03:04:05+01:00"}), Event{
			ID: "ev-1", Type: TypeRequested, Source: "/tests", Time: time.Date(2025, 1, 2, 2, 4, 5, 0, time.UTC),
			RequestID: "r-1", Requester: "n01@contoso.com", Profile: "aks-admin", Duration: "PT1H",
			Justification: "incident 42", Ticket: "INC-42"}},
		{"requested without duration and ticket", ce(TypeRequested, reqData(map[string]any{"duration": nil, "ticket": nil}), nil), Event{
			ID: "ev-1", Type: TypeRequested, Source: "/tests", RequestID: "r-1", Requester: "n01@contoso.com",
			Profile: "aks-admin", Justification: "incident 42"}},
		{"requested by object id", ce(TypeRequested, reqData(map[string]any{"requester": "5e5e0000-0000-4000-8000-000000000001"}), nil), Event{
			ID: "ev-1", Type: TypeRequested, Source: "/tests", RequestID: "r-1", Requester: "5e5e0000-0000-4000-8000-000000000001",
			Profile: "aks-admin", Duration: "PT1H", Justification: "incident 42", Ticket: "INC-42"}},
		{"requested by guest UPN", ce(TypeRequested, reqData(map[string]any{"requester": "g01_fabrikam.com#EXT#@contoso.com"}), nil), Event{
			ID: "ev-1", Type: TypeRequested, Source: "/tests", RequestID: "r-1", Requester: "g01_fabrikam.com#EXT#@contoso.com",
			Profile: "aks-admin", Duration: "PT1H", Justification: "incident 42", Ticket: "INC-42"}},
		{"approved", ce(TypeApproved, map[string]any{"requestId": "r-1", "approver": "p01@contoso.com", "comment": "ok\nline two"}, nil), Event{
			ID: "ev-1", Type: TypeApproved, Source: "/tests", RequestID: "r-1", Approver: "p01@contoso.com", Comment: "ok\nline two"}},
		{"denied", ce(TypeDenied, map[string]any{"requestId": "r-1", "approver": "p01@contoso.com", "reason": "no"}, nil), Event{
			ID: "ev-1", Type: TypeDenied, Source: "/tests", RequestID: "r-1", Approver: "p01@contoso.com", Reason: "no"}},
		{"cancelled", ce(TypeCancelled, map[string]any{"requestId": "r-1", "by": "n01@contoso.com"}, nil), Event{
			ID: "ev-1", Type: TypeCancelled, Source: "/tests", RequestID: "r-1", By: "n01@contoso.com"}},
		{"revoked", ce(TypeRevoked, map[string]any{"requestId": "r-1", "by": "p01@contoso.com", "reason": "done"}, nil), Event{
			ID: "ev-1", Type: TypeRevoked, Source: "/tests", RequestID: "r-1", By: "p01@contoso.com", Reason: "done"}},
		{"expire", ce(TypeExpire, map[string]any{"requestId": "r-1"}, nil), Event{
			ID: "ev-1", Type: TypeExpire, Source: "/tests", RequestID: "r-1"}},
		{"unknown data fields ignored (including group ids)", ce(TypeApproved, map[string]any{"requestId": "r-1", "approver": "p01@contoso.com",
			"groupId": "1c1a0000-0000-4000-8000-000000000004", "targetGroupId": "x"}, nil), Event{
			ID: "ev-1", Type: TypeApproved, Source: "/tests", RequestID: "r-1", Approver: "p01@contoso.com"}},
		{"null data fields are absent", ce(TypeApproved, map[string]any{"requestId": "r-1", "approver": "p01@contoso.com", "comment": nil}, nil), Event{
			ID: "ev-1", Type: TypeApproved, Source: "/tests", RequestID: "r-1", Approver: "p01@contoso.com"}},
		{"datacontenttype json with charset", ce(TypeExpire, map[string]any{"requestId": "r-1"}, map[string]any{"datacontenttype": "application/json; charset=utf-8"}), Event{
			ID: "ev-1", Type: TypeExpire, Source: "/tests", RequestID: "r-1"}},
		{"request id with allowed punctuation", ce(TypeExpire, map[string]any{"requestId": "A9._:@-x"}, nil), Event{
			ID: "ev-1", Type: TypeExpire, Source: "/tests", RequestID: "A9._:@-x"}},
		{"max length request id", ce(TypeExpire, map[string]any{"requestId": strings.Repeat("a", MaxIDLen)}, nil), Event{
			ID: "ev-1", Type: TypeExpire, Source: "/tests", RequestID: strings.Repeat("a", MaxIDLen)}},
		{"surrounding whitespace", append(append([]byte("  \n"), ce(TypeExpire, map[string]any{"requestId": "r-1"}, nil)...), '\n'), Event{
			ID: "ev-1", Type: TypeExpire, Source: "/tests", RequestID: "r-1"}},
		{"justification at the limit", ce(TypeRequested, reqData(map[string]any{"justification": strings.Repeat("j", MaxJustification)}), nil), Event{
			ID: "ev-1", Type: TypeRequested, Source: "/tests", RequestID: "r-1", Requester: "n01@contoso.com", Profile: "aks-admin",
			Duration: "PT1H", Justification: strings.Repeat("j", MaxJustification), Ticket: "INC-42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.body)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.Actor() != tt.want.Requester+tt.want.Approver+tt.want.By {
				t.Fatalf("Actor() = %q", got.Actor())
			}
		})
	}
}

func TestDecodeEventInvalid(t *testing.T) {
	approve := map[string]any{"requestId": "r-1", "approver": "p01@contoso.com"}
	withApprove := func(k string, v any) map[string]any {
		m := map[string]any{"requestId": "r-1", "approver": "p01@contoso.com"}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	deep := `{"specversion":"1.0","id":"ev-1","source":"/s","type":"jit.access.expire","data":{"requestId":"r-1","x":` +
		strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`
	tests := []struct {
		name      string
		body      []byte
		reason    string // substring of the reason
		eventID   string // expected EventID on the error
		requestID string // expected RequestID on the error
	}{
		{"empty", nil, "not a JSON object", "", ""},
		{"not JSON", []byte("hello"), "not a JSON object", "", ""},
		{"JSON array", []byte(`[{"id":"x"}]`), "not a JSON object", "", ""},
		{"JSON string", []byte(`"{}"`), "not a JSON object", "", ""},
		{"truncated JSON", []byte(`{"specversion":"1.0","id":"e"`), "not valid JSON", "", ""},
		{"deep nesting", []byte(deep), "nested deeper", "", ""},
		{"oversized", ce(TypeApproved, withApprove("comment", strings.Repeat("x", MaxEventBytes)), nil), "over the limit", "", ""},
		{"invalid UTF-8", []byte("{\"specversion\":\"1.0\",\"id\":\"e\xff\"}"), "UTF-8", "", ""},
		{"wrong specversion", ce(TypeApproved, approve, map[string]any{"specversion": "0.3"}), "specversion", "ev-1", "r-1"},
		{"missing specversion", ce(TypeApproved, approve, map[string]any{"specversion": nil}), "specversion", "ev-1", "r-1"},
		{"numeric specversion", ce(TypeApproved, approve, map[string]any{"specversion": 1.0}), "specversion", "ev-1", "r-1"},
		{"missing id", ce(TypeApproved, approve, map[string]any{"id": nil}), `"id" is missing`, "", "r-1"},
		{"empty id", ce(TypeApproved, approve, map[string]any{"id": ""}), `"id" is missing`, "", "r-1"},
		{"numeric id", ce(TypeApproved, approve, map[string]any{"id": 7}), `"id" must be a string`, "", "r-1"},
		{"id with control characters", ce(TypeApproved, approve, map[string]any{"id": "a\x01b"}), `"id"`, "", "r-1"},
		{"over-long id", ce(TypeApproved, approve, map[string]any{"id": strings.Repeat("i", 300)}), `"id"`, "", "r-1"},
		{"missing source", ce(TypeApproved, approve, map[string]any{"source": nil}), `"source" is missing`, "ev-1", "r-1"},
		{"numeric source", ce(TypeApproved, approve, map[string]any{"source": 3}), `"source" must be a string`, "ev-1", "r-1"},
		{"missing type", ce(TypeApproved, approve, map[string]any{"type": nil}), `"type" is missing`, "ev-1", "r-1"},
		{"numeric type", ce(TypeApproved, approve, map[string]any{"type": 1}), `"type" must be a string`, "ev-1", "r-1"},
		{"unknown type", ce("jit.access.granted", approve, nil), "unknown event type", "ev-1", "r-1"},
		{"bad time", ce(TypeApproved, approve, map[string]any{"time": "yesterday"}), `"time"`, "ev-1", "r-1"},
		{"xml content type", ce(TypeApproved, approve, map[string]any{"datacontenttype": "application/xml"}), "datacontenttype", "ev-1", "r-1"},
		{"data_base64", ce(TypeApproved, approve, map[string]any{"data_base64": "e30="}), "data_base64", "ev-1", "r-1"},
		{"missing data", ce(TypeApproved, nil, map[string]any{"data": nil}), "data is missing", "ev-1", ""},
		{"data is a string", ce(TypeApproved, `{"requestId":"r-1"}`, nil), "data is missing or not a JSON object", "ev-1", ""},
		{"data is an array", ce(TypeApproved, []any{approve}, nil), "data is missing or not a JSON object", "ev-1", ""},
		{"missing requestId", ce(TypeApproved, withApprove("requestId", nil), nil), "requestId is missing", "ev-1", ""},
		{"numeric requestId", ce(TypeApproved, withApprove("requestId", 12), nil), "requestId must be a string", "ev-1", ""},
		{"requestId with slash", ce(TypeApproved, withApprove("requestId", "a/b"), nil), "requestId", "ev-1", ""},
		{"requestId with space", ce(TypeApproved, withApprove("requestId", "a b"), nil), "requestId", "ev-1", ""},
		{"requestId starting with dot", ce(TypeApproved, withApprove("requestId", ".ab"), nil), "requestId", "ev-1", ""},
		{"requestId too long", ce(TypeApproved, withApprove("requestId", strings.Repeat("a", MaxIDLen+1)), nil), "requestId", "ev-1", ""},
		{"approver missing", ce(TypeApproved, withApprove("approver", nil), nil), "data.approver is missing", "ev-1", "r-1"},
		{"approver blank", ce(TypeApproved, withApprove("approver", "   "), nil), "data.approver is missing", "ev-1", "r-1"},
		{"approver number", ce(TypeApproved, withApprove("approver", 5), nil), "data.approver must be a string", "ev-1", "r-1"},
		{"approver object", ce(TypeApproved, withApprove("approver", map[string]any{"id": "x"}), nil), "data.approver must be a string", "ev-1", "r-1"},
		{"approver with space", ce(TypeApproved, withApprove("approver", "p01 @contoso.com"), nil), "data.approver is not an object id", "ev-1", "r-1"},
		{"approver with control char", ce(TypeApproved, withApprove("approver", "p01\x00@contoso.com"), nil), "data.approver is not an object id", "ev-1", "r-1"},
		{"approver with newline", ce(TypeApproved, withApprove("approver", "p01@contoso.com\n"), nil), "data.approver is not an object id", "ev-1", "r-1"},
		{"approver too long", ce(TypeApproved, withApprove("approver", strings.Repeat("p", MaxIdentityLen)+"@contoso.com"), nil), "data.approver is not an object id", "ev-1", "r-1"},
		{"comment too long", ce(TypeApproved, withApprove("comment", strings.Repeat("c", MaxComment+1)), nil), "data.comment is", "ev-1", "r-1"},
		{"comment with control char", ce(TypeApproved, withApprove("comment", "a\x07b"), nil), "data.comment contains control", "ev-1", "r-1"},
		{"deny reason too long", ce(TypeDenied, withApprove("reason", strings.Repeat("c", MaxComment+1)), nil), "data.reason is", "ev-1", "r-1"},
		{"cancel without by", ce(TypeCancelled, map[string]any{"requestId": "r-1"}, nil), "data.by is missing", "ev-1", "r-1"},
		{"revoke by with space", ce(TypeRevoked, map[string]any{"requestId": "r-1", "by": "a b"}, nil), "data.by is not an object id", "ev-1", "r-1"},
		{"revoke reason too long", ce(TypeRevoked, map[string]any{"requestId": "r-1", "by": "p01@contoso.com", "reason": strings.Repeat("r", MaxComment+1)}, nil), "data.reason is", "ev-1", "r-1"},
		{"requester missing", ce(TypeRequested, reqData(map[string]any{"requester": nil}), nil), "data.requester is missing", "ev-1", "r-1"},
		{"requester with tab", ce(TypeRequested, reqData(map[string]any{"requester": "n01\t@contoso.com"}), nil), "data.requester is not", "ev-1", "r-1"},
		{"profile missing", ce(TypeRequested, reqData(map[string]any{"profile": nil}), nil), "data.profile is missing", "ev-1", "r-1"},
		{"profile bad", ce(TypeRequested, reqData(map[string]any{"profile": "aks admin"}), nil), "data.profile is not a valid", "ev-1", "r-1"},
		{"profile numeric", ce(TypeRequested, reqData(map[string]any{"profile": 1}), nil), "data.profile must be a string", "ev-1", "r-1"},
		{"duration months", ce(TypeRequested, reqData(map[string]any{"duration": "P1M"}), nil), "data.duration", "ev-1", "r-1"},
		{"duration negative", ce(TypeRequested, reqData(map[string]any{"duration": "-PT1H"}), nil), "data.duration", "ev-1", "r-1"},
		{"duration zero", ce(TypeRequested, reqData(map[string]any{"duration": "PT0S"}), nil), "data.duration", "ev-1", "r-1"},
		{"duration Go syntax", ce(TypeRequested, reqData(map[string]any{"duration": "1h"}), nil), "data.duration", "ev-1", "r-1"},
		{"duration number", ce(TypeRequested, reqData(map[string]any{"duration": 3600}), nil), "data.duration must be a string", "ev-1", "r-1"},
		{"justification too long", ce(TypeRequested, reqData(map[string]any{"justification": strings.Repeat("j", MaxJustification+1)}), nil), "data.justification is", "ev-1", "r-1"},
		{"justification control char", ce(TypeRequested, reqData(map[string]any{"justification": "a\x1bb"}), nil), "data.justification contains control", "ev-1", "r-1"},
		{"ticket too long", ce(TypeRequested, reqData(map[string]any{"ticket": strings.Repeat("t", MaxTicket+1)}), nil), "data.ticket is", "ev-1", "r-1"},
		{"ticket array", ce(TypeRequested, reqData(map[string]any{"ticket": []string{"a"}}), nil), "data.ticket must be a string", "ev-1", "r-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent(tt.body)
			if err == nil {
				t.Fatalf("accepted: %+v", ev)
			}
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %T %v is not an *InvalidError", err, err)
			}
			if !strings.Contains(inv.Reason, tt.reason) {
				t.Fatalf("reason %q does not contain %q", inv.Reason, tt.reason)
			}
			if inv.EventID != tt.eventID {
				t.Fatalf("EventID = %q, want %q", inv.EventID, tt.eventID)
			}
			if inv.RequestID != tt.requestID {
				t.Fatalf("RequestID = %q, want %q", inv.RequestID, tt.requestID)
			}
			if ev != (Event{}) {
				t.Fatalf("event returned with error: %+v", ev)
			}
			if len(inv.Reason) > 400 {
				t.Fatalf("reason is %d bytes, echoing too much input", len(inv.Reason))
			}
			if !strings.HasPrefix(err.Error(), "invalid event: ") {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

// The type of an invalid event is reported when readable, so rejections can
// be classified.
func TestDecodeEventInvalidCarriesType(t *testing.T) {
	_, err := DecodeEvent(ce(TypeCancelled, map[string]any{"requestId": "r-9"}, map[string]any{"id": "ev-9"}))
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Type != TypeCancelled || inv.EventID != "ev-9" || inv.RequestID != "r-9" {
		t.Fatalf("got %#v", inv)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(ce(TypeRequested, reqData(nil), nil))
	f.Add(ce(TypeApproved, map[string]any{"requestId": "r-1", "approver": "p01@contoso.com"}, nil))
	f.Add([]byte(`{"data":{"requestId":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("not an InvalidError: %v", err)
			}
			if inv.RequestID != "" && !ValidRequestID(inv.RequestID) {
				t.Fatalf("unusable request id on error: %q", inv.RequestID)
			}
			return
		}
		if !ValidRequestID(ev.RequestID) || ev.ID == "" || ev.Source == "" {
			t.Fatalf("accepted incomplete event %+v", ev)
		}
	})
}

func TestParseFormatDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"PT3S", 3 * time.Second, "PT3S"},
		{"PT0.5S", 500 * time.Millisecond, "PT0.5S"},
		{"P1D", 24 * time.Hour, "P1D"},
		{"PT1H30M", 90 * time.Minute, "PT1H30M"},
		{"PT90M", 90 * time.Minute, "PT1H30M"},
		{"PT1H", time.Hour, "PT1H"},
		{"PT8H", 8 * time.Hour, "PT8H"},
		{"PT24H", 24 * time.Hour, "P1D"},
		{"P1DT12H", 36 * time.Hour, "P1DT12H"},
		{"PT1.5S", 1500 * time.Millisecond, "PT1.5S"},
		{"PT30M", 30 * time.Minute, "PT30M"},
		{"P366D", MaxAnyDuration, "P366D"},
		{"P31D", 31 * 24 * time.Hour, "P31D"},
		{"P1W", 7 * 24 * time.Hour, "P7D"},
		{"PT0.001S", time.Millisecond, "PT0.001S"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if s := FormatDuration(got); s != tt.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, s, tt.out)
		}
		if s := Duration(got).String(); s != tt.out {
			t.Errorf("Duration.String = %q", s)
		}
	}
	for _, bad := range []string{"", "P1M", "P1Y", "-PT1H", "PT0S", "P0D", "1h", "PT", "P", "P1DT", "PT-1H", "P367D", "PT1H " + strings.Repeat("0", 40), "hello", "PT1X"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

// Every duration with millisecond resolution survives a round trip.
func TestDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{
		time.Millisecond, 10 * time.Millisecond, 999 * time.Millisecond, time.Second, 59 * time.Second,
		61 * time.Second, time.Hour + time.Second, time.Hour + 100*time.Millisecond, 25*time.Hour + 1*time.Minute + 1*time.Second,
		7*time.Hour + 59*time.Minute + 59*time.Second + 999*time.Millisecond, 365 * 24 * time.Hour, 31 * 24 * time.Hour, 45*24*time.Hour + 3*time.Second,
	} {
		s := FormatDuration(d)
		got, err := ParseDuration(s)
		if err != nil || got != d {
			t.Errorf("%v → %q → %v, %v", d, s, got, err)
		}
	}
}

func TestFormatDurationEdges(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "PT0S", -time.Hour: "-PT1H", 1: "PT0.000000001S", 24*time.Hour + time.Second: "P1DT1S"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var v struct {
		D Duration `json:"d"`
	}
	if err := json.Unmarshal([]byte(`{"d":"PT3S"}`), &v); err != nil || time.Duration(v.D) != 3*time.Second {
		t.Fatalf("unmarshal: %v %v", v.D, err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"d":"PT3S"}` {
		t.Fatalf("marshal: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"d":""}`), &v); err != nil || v.D != 0 {
		t.Fatalf("empty: %v %v", v.D, err)
	}
	for _, bad := range []string{`{"d":"P1M"}`, `{"d":3600}`, `{"d":"1h"}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
