package fault

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWrapUnreadableQuotesNoData(t *testing.T) {
	type rec struct {
		Approvals []string        `json:"approvals"`
		N         int             `json:"n"`
		At        time.Time       `json:"at"`
		Nested    struct{ X int } `json:"nested"`
	}
	const secret = "SECRET-justification"
	for body, want := range map[string]string{
		`{"approvals":"` + secret + `"}`:    "field approvals holds a JSON string, not a []string",
		`{"n":12345678.5}`:                  "field n holds a JSON number, not a int",
		`{"nested":{"X":"` + secret + `"}}`: "field nested.X holds a JSON string, not a int",
		`{"at":"` + secret + `"}`:           "a value is malformed or out of range",
		`{"approvals":[` + secret:           "invalid JSON at byte 15",
		`{"approvals":["` + secret:          "invalid JSON at byte 35",
	} {
		var r rec
		err := WrapUnreadable("get request", "req-1", json.Unmarshal([]byte(body), &r))
		if !Unreadable(err) || !Permanent(err) || Transient(err) || NotFound(err) {
			t.Fatalf("%s: kinds of %v", body, err)
		}
		var u *UnreadableError
		if !errors.As(err, &u) || u.ID != "req-1" || u.Problem != want {
			t.Errorf("%s: problem %q, want %q", body, u.Problem, want)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "12345678") {
			t.Errorf("%s: error quotes the data: %v", body, err)
		}
	}
	err := WrapUnreadable("list", "req-2", Problem("state row has no valid %s", "BodyParts"))
	if !strings.Contains(err.Error(), "req-2: stored data cannot be read: state row has no valid BodyParts") {
		t.Fatal(err)
	}
	if Unreadable(Wrap(ErrPermanent, "x", errors.New("other"))) {
		t.Fatal("any permanent error counted as unreadable")
	}
}
