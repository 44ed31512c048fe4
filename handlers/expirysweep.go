package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/jitaccess/jitaccess/internal/telemetry"
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
	var err error
	if s.d.Sweeper == nil {
		c.add("sweep", "not configured")
	} else {
		err = s.d.Sweeper.Sweep(ctx)
	}
	s.logGauges(ctx)
	return err
}

// logGauges logs the metrics line after the sweep, whatever the sweep's
// outcome: active grants, pending approvals, ends overdue, stuck work
// (telemetry.Gauges). When the store cannot be read the line says so and the
// invocation's outcome is the sweep's; an alert rule notices the missing
// metrics line (infra/modules/alerts.bicep).
func (s *server) logGauges(ctx context.Context) {
	if s.d.Gauges == nil {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	g, err := s.d.Gauges.Read(gctx, s.d.Now())
	if err != nil {
		s.log.WarnContext(ctx, telemetry.MsgMetricsFailed, "errorKind", errorKind(err))
		return
	}
	s.log.InfoContext(ctx, telemetry.MsgMetrics, g.Attrs()...)
}
