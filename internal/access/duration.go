package access

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// UnmarshalJSON reads an ISO 8601 string: whatever MarshalJSON wrote, for
// every time.Duration, reads back exactly.
//
// It is not input validation: JSON of a Duration is stored data (a request
// as the store keeps it), and a stored value is read as it was written.
// Bounds belong where a value comes in (ParseDuration for sender input and
// settings; the broker for an observed end). Reading with ParseDuration's
// bounds made an observed activation ending more than a year away — a value
// the domain writes itself (Observe: EndsAt − at) — unreadable once stored,
// which failed every listing that met it.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		*d = 0
		return nil
	}
	if v, ok := parseFormatted(s); ok {
		*d = Duration(v)
		return nil
	}
	// Not FormatDuration's form (another spelling, e.g. PT1.5H): read as
	// sender input is.
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// parseFormatted reads exactly what FormatDuration writes:
// -?P(nD)?(T(nH)?(nM)?(n(.f)?S)?)?, with at most nine fractional digits,
// for the whole range of time.Duration (integer arithmetic, overflow
// refused). ok is false for anything else.
func parseFormatted(s string) (time.Duration, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	s, ok := strings.CutPrefix(s, "P")
	if !ok || s == "" {
		return 0, false
	}
	var total uint64
	add := func(n, unit uint64) bool {
		if n > math.MaxUint64/unit {
			return false
		}
		n *= unit
		if total > math.MaxUint64-n {
			return false
		}
		total += n
		return true
	}
	// number reads leading digits (at least one, at most 20).
	number := func() (uint64, bool) {
		i := 0
		for i < len(s) && i <= 20 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 20 {
			return 0, false
		}
		n, err := strconv.ParseUint(s[:i], 10, 64)
		s = s[i:]
		return n, err == nil
	}
	if s[0] != 'T' {
		n, ok := number()
		if !ok || !strings.HasPrefix(s, "D") || !add(n, uint64(24*time.Hour)) {
			return 0, false
		}
		s = s[1:]
	}
	if s != "" {
		rest, ok := strings.CutPrefix(s, "T")
		if !ok || rest == "" {
			return 0, false
		}
		s = rest
		for _, u := range []struct {
			sign byte
			unit time.Duration
		}{{'H', time.Hour}, {'M', time.Minute}} {
			i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
			if i > 0 && s[i] == u.sign {
				n, ok := number()
				if !ok || !add(n, uint64(u.unit)) {
					return 0, false
				}
				s = s[1:]
			}
		}
		if s != "" {
			n, ok := number()
			if !ok || !add(n, uint64(time.Second)) {
				return 0, false
			}
			if frac, ok := strings.CutPrefix(s, "."); ok {
				i := 0
				for i < len(frac) && frac[i] >= '0' && frac[i] <= '9' {
					i++
				}
				if i == 0 || i > 9 {
					return 0, false
				}
				f, _ := strconv.ParseUint(frac[:i]+strings.Repeat("0", 9-i), 10, 64)
				if !add(f, 1) {
					return 0, false
				}
				s = frac[i:]
			}
			if s != "S" {
				return 0, false
			}
		}
	}
	switch {
	case !neg && total <= math.MaxInt64:
		return time.Duration(total), true
	case neg && total <= 1<<63:
		return -time.Duration(total), true // 1<<63 converts to MinInt64, whose negation is itself
	}
	return 0, false
}
