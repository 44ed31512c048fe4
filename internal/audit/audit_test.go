package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/seed"
)

const fixtures = "../../handlers/testdata/audit"

var self = Self{AppID: "a9900000-0000-4000-8000-0000000000a1", ObjectID: "0b100000-0000-4000-8000-0000000000a1"}

func isTarget(g string) bool { return g == seed.GroupAKSAdmin }

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestFixtures(t *testing.T) {
	type want struct {
		kind         Kind
		user         string
		initiator    Initiator
		actor        string
		deactivated  bool
		requestID    string
		expiration   time.Time
		recordPrefix string
	}
	cases := []struct {
		file  string
		self  Self
		wants []want
	}{
		{"pim_activation.json", self, []want{
			{kind: MemberAdded, user: seed.UserN01, initiator: ByPIM, actor: "sp:bdefcbb6-d8b2-497d-a944-b683d9a36b0c", recordPrefix: "Directory_"},
			{kind: PIMActivated, user: seed.UserN01, initiator: ByPIM, actor: "n01@contoso.com",
				requestID: "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", expiration: mustTime("2026-11-20T11:15:01.803Z"), recordPrefix: "PIM_"},
		}},
		{"pim_expired.json", self, []want{
			{kind: MemberRemoved, user: seed.UserN01, initiator: ByPIM, actor: "sp:bdefcbb6-d8b2-497d-a944-b683d9a36b0c"},
			{kind: PIMEnded, user: seed.UserN01, initiator: ByPIM, actor: "9dfd627f-bdc5-4b1c-af9d-c85097fdeff8", requestID: "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"},
		}},
		{"pim_deactivated.json", self, []want{
			{kind: PIMEnded, user: seed.UserN01, initiator: ByPIM, actor: "n01@contoso.com", deactivated: true, requestID: "2468ace0-1357-49bd-8f0e-abcdef012345"},
			{kind: MemberRemoved, user: seed.UserN01, initiator: ByPIM, actor: "sp:bdefcbb6-d8b2-497d-a944-b683d9a36b0c"},
		}},
		{"outofband_add_by_user.json", self, []want{{kind: MemberAdded, user: seed.UserX01, initiator: ByOther, actor: "a01@contoso.com"}}},
		{"own_add_appid.json", self, []want{{kind: MemberAdded, user: seed.UserN01, initiator: BySelf, actor: "app:" + self.AppID}}},
		{"own_add_appid.json", Self{AppID: self.AppID}, []want{{kind: MemberAdded, user: seed.UserN01, initiator: BySelf, actor: "app:" + self.AppID}}},
		{"own_add_appid.json", Self{AppID: "ffffffff-0000-4000-8000-000000000000"}, []want{{kind: MemberAdded, user: seed.UserN01, initiator: ByOther, actor: "app:" + self.AppID}}},
		// appId null: the AppId detail (our app id) or the service principal id (our object id).
		{"own_add_appid_in_details.json", Self{AppID: self.AppID}, []want{{kind: MemberAdded, user: seed.UserN01, initiator: BySelf, actor: "app:" + self.AppID}}},
		{"own_add_appid_in_details.json", Self{ObjectID: self.ObjectID}, []want{{kind: MemberAdded, user: seed.UserN01, initiator: BySelf, actor: "app:" + self.AppID}}},
		{"own_add_appid_in_details.json", Self{AppID: "ffffffff-0000-4000-8000-000000000000"}, []want{{kind: MemberAdded, user: seed.UserN01, initiator: ByOther, actor: "app:" + self.AppID}}},
		{"removal_by_other.json", self, []want{{kind: MemberRemoved, user: seed.UserN01, initiator: ByOther, actor: "a01@contoso.com"}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			recs, probs := Decode(load(t, c.file))
			if len(probs) != 0 {
				t.Fatalf("problems %v", probs)
			}
			if len(recs) != len(c.wants) {
				t.Fatalf("%d records, want %d", len(recs), len(c.wants))
			}
			for i, w := range c.wants {
				f := Classify(recs[i], c.self, isTarget)
				if f.Problem != "" || f.Kind != w.kind || f.GroupID != seed.GroupAKSAdmin || f.UserID != w.user ||
					f.Initiator != w.initiator || f.Actor.String() != w.actor || f.Deactivated != w.deactivated ||
					f.PIMRequestID != w.requestID || !f.ExpirationTime.Equal(w.expiration) {
					t.Errorf("record %d: got %+v (actor %q)\nwant %+v", i, f, f.Actor.String(), w)
				}
				if f.RecordID == "" || f.RecordID != recs[i].ID || f.At.IsZero() || !strings.HasPrefix(f.RecordID, w.recordPrefix) {
					t.Errorf("record %d: id %q at %v", i, f.RecordID, f.At)
				}
			}
		})
	}
}

func TestNoiseBatch(t *testing.T) {
	recs, probs := Decode(load(t, "noise.json"))
	if len(probs) != 2 || probs[0].Index != 6 || probs[1].Index != 7 {
		t.Fatalf("problems %v", probs)
	}
	if len(recs) != 8 {
		t.Fatalf("%d records", len(recs))
	}
	var kinds []string
	for _, r := range recs {
		f := Classify(r, self, isTarget)
		k := string(f.Kind)
		if f.Problem != "" {
			k = "problem:" + f.Problem
		}
		kinds = append(kinds, r.ID+"="+k)
	}
	want := []string{
		"Directory_ESQ=ignore",
		"Directory_other_group_1=ignore",
		"Directory_failed_1=ignore",
		"Directory_badid_1=problem:user id is not a GUID",
		"Directory_logged_by_other=ignore",
		"0a1b2c3d-0000-4000-8000-000000000000=ignore",
		"Directory_nested_group=problem:no user among the target resources",
		"PIM_eligible_1=ignore",
	}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	// The other group is a finding when every group counts.
	if f := Classify(recs[1], self, nil); f.Kind != MemberAdded || f.GroupID != seed.GroupFinanceAdmins {
		t.Fatalf("nil isTarget: %+v", f)
	}
}

func TestDecodeGarbage(t *testing.T) {
	cases := []struct {
		name, in string
		recs     int
		problem  string
	}{
		{"empty", "", 0, "empty event"},
		{"spaces", "  \n", 0, "empty event"},
		{"not json", "hello", 0, "not JSON"},
		{"truncated", `{"records":[{"properties":`, 0, "not JSON"},
		{"two values", `{} {}`, 0, "not JSON: trailing data"},
		{"number", `42`, 0, "not a JSON object"},
		{"string", `"{\"records\":[]}"`, 0, "not a JSON object"},
		{"records object", `{"records":{"a":1}}`, 0, "records is not an array"},
		{"records null", `{"records":null}`, 0, "records is not an array"},
		{"no records", `{"foo":1}`, 0, "no records"},
		{"empty records", `{"records":[]}`, 0, ""},
		{"Records capitalised", `{"Records":[{"properties":{"activityDisplayName":"x"}}]}`, 1, ""},
		{"bare array", `[{"properties":{"activityDisplayName":"x"}}]`, 1, ""},
		{"bare record", `{"operationName":"Add member to group","properties":{"id":"1"}}`, 1, ""},
		{"record without activity", `{"records":[{"properties":{"id":"1"}}]}`, 0, "record 0 (1): record has no activityDisplayName"},
		{"properties wrong type", `{"records":[{"properties":[1]}]}`, 0, "record 0: record has no properties object"},
		{"wrong field types", `{"records":[{"properties":{"activityDisplayName":"Add member to group","id":7,"initiatedBy":"x","targetResources":{"a":1},"additionalDetails":[1,{"key":3,"value":true}]}}]}`, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, probs := Decode([]byte(c.in))
			if len(recs) != c.recs {
				t.Fatalf("%d records", len(recs))
			}
			got := ""
			if len(probs) > 0 {
				got = probs[0].String()
				got = strings.TrimPrefix(got, "event: ")
			}
			if got != c.problem {
				t.Fatalf("problem %q, want %q", got, c.problem)
			}
		})
	}
}

func TestWrongFieldTypesAreRead(t *testing.T) {
	recs, _ := Decode([]byte(`{"records":[{"properties":{"activityDisplayName":"Add member to group","id":7,"additionalDetails":[1,{"key":3,"value":true}]}}]}`))
	if recs[0].ID != "7" {
		t.Fatalf("id %q", recs[0].ID)
	}
	if v, ok := recs[0].Detail("3"); !ok || v != "true" {
		t.Fatalf("detail %q %v", v, ok)
	}
}

func TestGroupFromModifiedProperties(t *testing.T) {
	// No Group target: the user's Group.ObjectID (old value on a removal).
	in := `{"records":[{"properties":{"id":"r","activityDisplayName":"Remove member from group","loggedByService":"Core Directory","result":"success",
	"targetResources":[{"id":"5e5e0000-0000-4000-8000-000000000001","type":"User","modifiedProperties":[{"displayName":"Group.ObjectID","oldValue":"\"1C1A0000-0000-4000-8000-000000000002\"","newValue":null}]}]}}]}`
	recs, probs := Decode([]byte(in))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	f := Classify(recs[0], self, isTarget)
	if f.Kind != MemberRemoved || f.GroupID != seed.GroupAKSAdmin || f.UserID != seed.UserN01 || f.Initiator != ByOther {
		t.Fatalf("%+v", f)
	}
}

func TestNonGUIDGroup(t *testing.T) {
	in := `{"records":[{"properties":{"id":"r","activityDisplayName":"Add member to group","loggedByService":"Core Directory",
	"targetResources":[{"id":"5e5e0000-0000-4000-8000-000000000001","type":"User"},{"id":"aks-admin","type":"Group"}]}}]}`
	recs, _ := Decode([]byte(in))
	if f := Classify(recs[0], self, isTarget); f.Kind != Ignore || f.Problem != "group id is not a GUID" {
		t.Fatalf("%+v", f)
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-11-20T11:15:01.8030000Z", "2026-11-20T11:15:01.803+00:00", "2026-11-20T11:15:01.803", "11/20/2026 11:15:01 AM", `"2026-11-20T11:15:01.803Z"`} {
		got, ok := parseTime(s)
		want := mustTime("2026-11-20T11:15:01.803Z")
		if s == "11/20/2026 11:15:01 AM" {
			want = mustTime("2026-11-20T11:15:01Z")
		}
		if !ok || !got.Equal(want) {
			t.Errorf("%q → %v %v", s, got, ok)
		}
	}
	if _, ok := parseTime("soon"); ok {
		t.Fatal("parsed garbage")
	}
}

func FuzzDecode(f *testing.F) {
	entries, err := os.ReadDir(fixtures)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(load(f, e.Name()))
		}
	}
	f.Add([]byte(`{"records":{"a":1}}`))
	f.Add([]byte(`[{"properties":{"activityDisplayName":"Add member to group","loggedByService":"Core Directory","targetResources":[{"type":"Group","id":"1c1a0000-0000-4000-8000-000000000002"},{"type":"User","id":"5e5e0000-0000-4000-8000-000000000001"}]}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, probs := Decode(b)
		for _, p := range probs {
			if p.Reason == "" || strings.HasPrefix(p.Reason, "decoder failure") {
				t.Fatalf("problem %+v", p)
			}
		}
		for _, r := range recs {
			f := Classify(r, self, isTarget)
			if f.Kind != Ignore && (!IsGUID(f.GroupID) || !IsGUID(f.UserID) || f.Problem != "") {
				t.Fatalf("finding with bad ids: %+v", f)
			}
			_ = Classify(r, Self{}, nil)
		}
	})
}
