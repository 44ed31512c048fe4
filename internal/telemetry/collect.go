package telemetry

import (
	"encoding/json"
	"sync"
	"time"
)

// Bounds of the answer's Logs. The host reads the whole answer into memory
// and logs each entry as a trace: an invocation that logs more (a sweep
// ending hundreds of grants) keeps its first lines, a line saying how many
// were left out, and its last line; every line is on stdout regardless.
const (
	MaxLogLines  = 100
	MaxLogBytes  = 64 << 10
	MaxLineBytes = 8 << 10
)

// collector keeps an invocation's lines within the bounds. The last line
// added is always kept apart, so that the outcome line survives any flood.
type collector struct {
	mu      sync.Mutex
	lines   []string
	bytes   int
	last    string
	omitted int
}

func (c *collector) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(line) > MaxLineBytes {
		c.omitted++
		return
	}
	if c.last != "" {
		// The previous last line goes into the body, or out.
		if len(c.lines) < MaxLogLines-2 && c.bytes+len(c.last) <= MaxLogBytes-2*MaxLineBytes {
			c.lines = append(c.lines, c.last)
			c.bytes += len(c.last)
		} else {
			c.omitted++
		}
	}
	c.last = line
}

// omittedLine is the line standing for the lines left out (the same shape as
// slog's JSON lines, so that queries read it like any other).
type omittedLine struct {
	Time         string `json:"time"`
	Level        string `json:"level"`
	Msg          string `json:"msg"`
	Omitted      int    `json:"logsOmitted"`
	Function     string `json:"function,omitempty"`
	InvocationID string `json:"invocationId,omitempty"`
}

func (c *collector) snapshot(invocationID, function string) ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.lines)+2)
	out = append(out, c.lines...)
	if c.omitted > 0 {
		b, _ := json.Marshal(omittedLine{
			Time: time.Now().UTC().Format(time.RFC3339Nano), Level: "WARN", Msg: MsgLogsOmitted,
			Omitted: c.omitted, Function: function, InvocationID: invocationID,
		})
		out = append(out, string(b))
	}
	if c.last != "" {
		out = append(out, c.last)
	}
	return out, c.omitted
}
