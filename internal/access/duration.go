package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sosodev/duration"
)

// Duration is a time.Duration that reads and writes ISO 8601 ("PT1H").
type Duration time.Duration

// MaxAnyDuration bounds every duration jitaccess accepts (a year).
const MaxAnyDuration = 366 * 24 * time.Hour

// ParseDuration parses an ISO 8601 duration of days, hours, minutes and
// seconds (fractions allowed). Years and months are refused (their length
// depends on the calendar), as are negative, zero and absurdly long ones.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > 32 {
		return 0, errors.New("ISO 8601 duration is too long")
	}
	d, err := duration.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration (e.g. PT1H, PT30M, P1D)", clip(s, 32))
	}
	if d.Negative {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if d.Years != 0 || d.Months != 0 {
		return 0, fmt.Errorf("duration %q uses years or months; use days, hours, minutes or seconds", s)
	}
	if strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	td := d.ToTimeDuration()
	if td <= 0 {
		return 0, fmt.Errorf("duration %q must be greater than zero", s)
	}
	if td > MaxAnyDuration {
		return 0, fmt.Errorf("duration %q is longer than a year", s)
	}
	return td, nil
}

// FormatDuration renders d as an ISO 8601 duration (PT1H, PT1H30M, PT3S,
// PT0.5S, P1DT12H) in days, hours, minutes and seconds only, so that
// ParseDuration reads back exactly what it wrote (it refuses years and months,
// whose length depends on the calendar).
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "PT0S"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d // MinInt64 stays negative; its uint64 conversion below is still right
	}
	u := uint64(d)
	const day, hour, minute, second = uint64(24 * time.Hour), uint64(time.Hour), uint64(time.Minute), uint64(time.Second)
	b.WriteByte('P')
	if n := u / day; n > 0 {
		b.WriteString(strconv.FormatUint(n, 10) + "D")
		u %= day
	}
	if u == 0 {
		return b.String()
	}
	b.WriteByte('T')
	if n := u / hour; n > 0 {
		b.WriteString(strconv.FormatUint(n, 10) + "H")
		u %= hour
	}
	if n := u / minute; n > 0 {
		b.WriteString(strconv.FormatUint(n, 10) + "M")
		u %= minute
	}
	if u > 0 {
		b.WriteString(strconv.FormatUint(u/second, 10))
		if frac := u % second; frac > 0 {
			b.WriteByte('.')
			b.WriteString(strings.TrimRight(fmt.Sprintf("%09d", frac), "0"))
		}
		b.WriteByte('S')
	}
	return b.String()
}

// String renders the duration in ISO 8601.
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// MarshalJSON writes the duration as an ISO 8601 string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads an ISO 8601 string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
