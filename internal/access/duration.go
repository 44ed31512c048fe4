package access

import (
	"encoding/json"
	"errors"
	"fmt"
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

// FormatDuration renders d as an ISO 8601 duration (PT1H, PT1H30M, PT3S, PT0.5S).
func FormatDuration(d time.Duration) string {
	return duration.FromTimeDuration(d).String()
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
