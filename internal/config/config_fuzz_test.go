package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad: one setting at a time set to anything: Load never panics, and
// either succeeds or fails with errors that each name a setting — the one
// given (the start-up message must say which setting to fix).
func FuzzLoad(f *testing.F) {
	names := []string{EnvPort, EnvTablesConn, EnvTablePrefix, EnvGraphBaseURL, EnvGraphScope, EnvServiceBusNS, EnvNotifyTopic,
		EnvClientID, EnvRequestsQueue, EnvSweepSchedule, EnvAuditHub, EnvLogLevel, EnvReconcileBudget, EnvContinuationKey,
		EnvExpiringLead, EnvApproverCacheTTL, EnvPatience}
	for i, v := range []string{"", "x", "0", "-1", "65536", "PT1M", "P1Y", "http://[::1", "0 */1 * * * *", "* * *", "debug",
		"a.servicebus.windows.net", strings.Repeat("k", 300), "\x00", "PT5M", "1c1a0000-0000-4000-8000-000000000001"} {
		f.Add(uint8(i), v)
	}
	f.Fuzz(func(t *testing.T, which uint8, v string) {
		name := names[int(which)%len(names)]
		m := good()
		m[name] = v
		_, err := Load(env(m))
		if err == nil {
			return
		}
		for _, e := range unwrapAll(err) {
			var se *SettingError
			if !errors.As(e, &se) || se.Name == "" || se.Reason == "" {
				t.Fatalf("%s=%q: an error that names no setting: %v", name, v, e)
			}
			if !strings.Contains(se.Name, name) {
				t.Fatalf("%s=%q: the error names %s", name, v, se.Name)
			}
		}
	})
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
