package access

import (
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
