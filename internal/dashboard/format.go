package dashboard

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// How values are displayed: free text cut to MaxText, points in time,
// durations.

// text is a free-text value as displayed: Short is at most MaxText
// characters; when it was cut, Full holds the whole text for the title.
type text struct {
	Short string
	Full  string
}

// Cut reports whether the displayed text is shortened.
func (t text) Cut() bool { return t.Full != "" }

func newText(s string) text {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= MaxText {
		return text{Short: s}
	}
	return text{Short: clipRunes(s, MaxText-1) + "…", Full: s}
}

func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// stamp is a point in time as displayed: the text is UTC with the year
// ("23 Nov 2026 10:04 UTC"); the page's script replaces it by the same time
// in the viewer's zone, and Title keeps the UTC time to the second.
type stamp struct {
	ISO   string // RFC 3339 UTC, for <time datetime>
	Show  string // "23 Nov 2026 10:04 UTC" (Secs: "… 10:04:05 UTC"), no-break spaces but one
	Title string // "2026-11-23 10:04:05 UTC"
	Secs  bool   // shown to the second (the request's page, the timeline)
}

// showDate lays out the date of a stamp; no-break spaces keep the date and
// the clock each in one piece, while a narrow column may wrap between them.
const (
	nbsp     = "\u00a0"
	showDate = "2" + nbsp + "Jan" + nbsp + "2006"
)

func newStamp(t time.Time) stamp {
	if t.IsZero() {
		return stamp{}
	}
	t = t.UTC()
	return stamp{ISO: t.Format(time.RFC3339), Show: t.Format(showDate+" 15:04") + nbsp + "UTC", Title: t.Format("2006-01-02 15:04:05") + " UTC"}
}

func newStampSecs(t time.Time) stamp {
	s := newStamp(t)
	if s.ISO != "" {
		s.Show, s.Secs = t.UTC().Format(showDate+" 15:04:05")+nbsp+"UTC", true
	}
	return s
}

// span formats a duration for people: "2d 3h", "1h 05m", "12m 30s", "45s".
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %02dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm %02ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

func nonEmpty(s, alt string) string {
	if strings.TrimSpace(s) != "" {
		return s
	}
	return alt
}
