package access

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDuration: ParseDuration never panics; whatever it accepts is within
// (0, MaxAnyDuration], and FormatDuration writes it back so that it parses
// to exactly the same duration (the round trip the store and Graph rely on).
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"PT1H", "PT30M", "PT3S", "PT0.5S", "P1D", "P1DT12H", "PT8H", "P366D", "P367D", "PT0S",
		"P1Y", "P1M", "-PT1H", "PT", "P", "", "PT1.5H", "P0.5D", "PT1H30M15.25S", "PT100000000H", "pt1h", "PT1H ", "P1W",
		"PT9223372036S", "PT0.000000001S", "PT1e3S", "PT,5S", "P1DT", "PT-1S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("%q: error %v with duration %v", s, err, d)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("%q: error too long: %v", s, err)
			}
			return
		}
		if d <= 0 || d > MaxAnyDuration {
			t.Fatalf("%q accepted as %v", s, d)
		}
		out := FormatDuration(d)
		back, err := ParseDuration(out)
		if err != nil || back != d {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, out, back, err)
		}
		if strings.ContainsAny(out, "YW") || (strings.Contains(out, "M") && !strings.Contains(out, "T")) {
			t.Fatalf("%q formatted with years, weeks or months: %q", s, out)
		}
		var j Duration
		if err := j.UnmarshalJSON([]byte(`"` + out + `"`)); err != nil || time.Duration(j) != d {
			t.Fatalf("JSON %q: %v %v", out, time.Duration(j), err)
		}
	})
}

// FuzzDurationJSON: a Duration's JSON reads back exactly, for every
// time.Duration (stored requests carry durations jitaccess did not bound
// itself, e.g. an observed activation's end minus its start), and reading
// arbitrary text never panics.
func FuzzDurationJSON(f *testing.F) {
	for _, d := range []int64{0, 1, -1, int64(time.Hour), int64(400 * 24 * time.Hour), int64(MaxAnyDuration) + 1,
		1<<63 - 1, -1 << 63, int64(292 * 365 * 24 * time.Hour), 86400e9 + 1} {
		f.Add(d, "")
	}
	for _, s := range []string{"P400D", "PT1H30M", "P106751DT23H47M16.854775807S", "P106751DT23H47M16.854775808S",
		"-P106751DT23H47M16.854775808S", "P99999999999999999999D", "PT1.1234567891S", "P1DT", "PT", "P", "PT1M1H", "P1Y"} {
		f.Add(int64(0), s)
	}
	f.Fuzz(func(t *testing.T, n int64, s string) {
		d := Duration(n)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Fatalf("%d → %s → %d, %v", n, b, back, err)
		}
		if s == "" {
			return
		}
		q, _ := json.Marshal(s)
		var v Duration
		if err := json.Unmarshal(q, &v); err == nil {
			if p, ok := parseFormatted(s); ok && time.Duration(v) != p {
				t.Fatalf("%q read as %v, formatted form says %v", s, time.Duration(v), p)
			}
		}
		// Whatever ParseDuration accepts, the JSON reads the same.
		if p, err := ParseDuration(s); err == nil {
			if err := json.Unmarshal(q, &v); err != nil || time.Duration(v) != p {
				t.Fatalf("%q: ParseDuration %v, JSON %v %v", s, p, time.Duration(v), err)
			}
		}
	})
}

func TestStoredDurationEdges(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"P400D":                         400 * 24 * time.Hour,
		"P106751DT23H47M16.854775807S":  1<<63 - 1,
		"-P106751DT23H47M16.854775808S": -1 << 63,
		"PT0S":                          0,
		"PT0.000000001S":                1,
		"P1DT12H":                       36 * time.Hour,
		"PT1.5H":                        90 * time.Minute, // not FormatDuration's form: read by the fallback
	} {
		var d Duration
		if err := json.Unmarshal([]byte(`"`+s+`"`), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v, want %v", s, time.Duration(d), err, want)
		}
	}
	for _, s := range []string{"P106751DT23H47M16.854775808S", "P99999999999999999999D", "P1Y", "P1M", "nonsense", "P", "PT"} {
		var d Duration
		if err := json.Unmarshal([]byte(`"`+s+`"`), &d); err == nil {
			t.Errorf("%s read as %v", s, time.Duration(d))
		}
	}
}
