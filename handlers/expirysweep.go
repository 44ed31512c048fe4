package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// timerInfo is the host's rendering of the timer trigger value
// (Microsoft.Azure.WebJobs.TimerInfo through JObject.FromObject).
type timerInfo struct {
	Schedule       json.RawMessage `json:"Schedule"`
	ScheduleStatus *struct {
		Last        string `json:"Last"`
		Next        string `json:"Next"`
		LastUpdated string `json:"LastUpdated"`
	} `json:"ScheduleStatus"`
	IsPastDue bool `json:"IsPastDue"`
}

// decodeTimer reads Data.timer; a missing or odd timer is not an error (the
// sweep needs nothing from it).
func decodeTimer(env *envelope) (timerInfo, bool) {
	var t timerInfo
	if env == nil {
		return t, false
	}
	v, ok := env.binding("timer")
	if !ok {
		return t, false
	}
	body, ok := unwrapBody(v)
	if !ok || json.Unmarshal(body, &t) != nil {
		return timerInfo{}, false
	}
	return t, true
}

// expirySweep handles POST /ExpirySweep (timer trigger). The sweep's own
// failures (transient) fail the invocation so they show in the host's
// records; the next tick retries anyway.
func (s *server) expirySweep(ctx context.Context, r *http.Request, c *call) error {
	_, env, problem := s.readInvocation(r)
	if problem != "" {
		c.add("problem", problem)
	}
	if t, ok := decodeTimer(env); ok {
		c.add("isPastDue", t.IsPastDue)
		if t.ScheduleStatus != nil {
			if next := parseHostTime(t.ScheduleStatus.Next); !next.IsZero() {
				c.add("next", next.Format(time.RFC3339))
			}
		}
	}
	if s.d.Sweeper == nil {
		c.add("sweep", "not configured")
		return nil
	}
	return s.d.Sweeper.Sweep(ctx)
}
