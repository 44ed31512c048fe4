package devhost

import (
	"context"
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

func parseSchedule(expr string) (cron.Schedule, error) {
	if d, ok := parseTimeSpan(expr); ok && d > 0 {
		return cron.Every(d), nil
	}
	sch, err := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("schedule %q is not a six-field NCRONTAB expression: %v", expr, err)
	}
	return sch, nil
}

// startTimers runs each timerTrigger function on its schedule (a tick that
// comes while the previous run is still under way is skipped); stop ends
// them.
func (h *Host) startTimers(ctx context.Context) {
	h.cron = cron.New(cron.WithSeconds(), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	for _, f := range h.timerFns {
		sch, _ := parseSchedule(f.Trigger().Schedule)
		name := f.Name
		h.cron.Schedule(sch, cron.FuncJob(func() { _ = h.FireTimer(ctx, name) }))
	}
	h.cron.Start()
}

// FireTimer invokes a timerTrigger function now, with a realistic payload.
func (h *Host) FireTimer(ctx context.Context, name string) error {
	var f *Function
	for _, t := range h.timerFns {
		if strings.EqualFold(t.Name, name) {
			f = t
		}
	}
	if f == nil {
		return fmt.Errorf("devhost: no timer function %q", name)
	}
	sch, _ := parseSchedule(f.Trigger().Schedule)
	now := h.o.Now()
	h.mu.Lock()
	last := h.lastTick[f.Name]
	h.lastTick[f.Name] = now
	h.mu.Unlock()
	return h.invoke(ctx, f.Name, TimerPayload(f.Name, f.Trigger().Name, last, sch.Next(now), now, false))
}
