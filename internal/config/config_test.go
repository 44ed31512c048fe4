package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func good() map[string]string {
	return map[string]string{
		EnvPort:         "7071",
		EnvTablesConn:   "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
		EnvProfilesFile: "/tmp/profiles.json",
	}
}

func TestLoadDefaults(t *testing.T) {
	s, err := Load(env(good()))
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 7071 || s.TablePrefix != "jit" || s.GraphBaseURL != DefaultGraphBaseURL ||
		s.GraphScope != "https://graph.microsoft.com/.default" || s.RequestsQueue != "access-requests" ||
		s.SweepSchedule != "0 */1 * * * *" || s.AuditHub != "insights-logs-auditlogs" {
		t.Fatalf("defaults: %+v", s)
	}
}

func TestGraphScopeFollowsBaseURL(t *testing.T) {
	m := good()
	m[EnvGraphBaseURL] = "http://127.0.0.1:8443/v1.0/"
	s, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if s.GraphBaseURL != "http://127.0.0.1:8443/v1.0" || s.GraphScope != "http://127.0.0.1:8443/.default" {
		t.Fatalf("got %q %q", s.GraphBaseURL, s.GraphScope)
	}
}

func TestLoadNamesTheBadSetting(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(m map[string]string)
		names []string
	}{
		{"no port", func(m map[string]string) { delete(m, EnvPort) }, []string{EnvPort}},
		{"bad port", func(m map[string]string) { m[EnvPort] = "70x" }, []string{EnvPort}},
		{"port out of range", func(m map[string]string) { m[EnvPort] = "70000" }, []string{EnvPort}},
		{"no tables", func(m map[string]string) { delete(m, EnvTablesConn) }, []string{EnvTablesConn, EnvTablesEndpoint}},
		{"both tables", func(m map[string]string) { m[EnvTablesEndpoint] = "https://a.table.core.windows.net" }, []string{EnvTablesConn, EnvTablesEndpoint}},
		{"junk connection string", func(m map[string]string) { m[EnvTablesConn] = "hello" }, []string{EnvTablesConn}},
		{"http endpoint", func(m map[string]string) {
			delete(m, EnvTablesConn)
			m[EnvTablesEndpoint] = "http://acct.table.core.windows.net"
		}, []string{EnvTablesEndpoint}},
		{"prefix", func(m map[string]string) { m[EnvTablePrefix] = "1-bad" }, []string{EnvTablePrefix}},
		{"graph url", func(m map[string]string) { m[EnvGraphBaseURL] = "graph" }, []string{EnvGraphBaseURL}},
		{"graph http remote", func(m map[string]string) { m[EnvGraphBaseURL] = "http://graph.example.com/v1.0" }, []string{EnvGraphBaseURL}},
		{"scope", func(m map[string]string) { m[EnvGraphScope] = "User.Read" }, []string{EnvGraphScope}},
		{"namespace", func(m map[string]string) { m[EnvServiceBusNS] = "not a namespace" }, []string{EnvServiceBusNS}},
		{"topic without namespace", func(m map[string]string) { m[EnvNotifyTopic] = "outcomes" }, []string{EnvNotifyTopic}},
		{"client id", func(m map[string]string) { m[EnvClientID] = "abc" }, []string{EnvClientID}},
		{"schedule fields", func(m map[string]string) { m[EnvSweepSchedule] = "*/5 * * * *" }, []string{EnvSweepSchedule}},
		{"schedule junk", func(m map[string]string) { m[EnvSweepSchedule] = "0 */x * * * *" }, []string{EnvSweepSchedule}},
		{"log level", func(m map[string]string) { m[EnvLogLevel] = "loud" }, []string{EnvLogLevel}},
		{"continuation key", func(m map[string]string) { m[EnvContinuationKey] = "short" }, []string{EnvContinuationKey}},
		{"two at once", func(m map[string]string) { delete(m, EnvPort); m[EnvClientID] = "x" }, []string{EnvPort, EnvClientID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			c.edit(m)
			_, err := Load(env(m))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, n := range c.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
		})
	}
}

func TestSweepInterval(t *testing.T) {
	s, _ := Load(env(good()))
	if d := SweepInterval(s.SweepSchedule, mustTime(t)); d.Seconds() != 60 {
		t.Fatalf("interval %v", d)
	}
}

func mustTime(t *testing.T) (tm time.Time) {
	t.Helper()
	return time.Date(2026, 11, 23, 10, 0, 30, 0, time.UTC)
}

func TestReconcileBudget(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			switch k {
			case EnvReconcileBudget:
				return v
			case EnvTablesConn:
				return "UseDevelopmentStorage=true"
			case EnvPort:
				return "7071"
			}
			return ""
		}
	}
	for v, want := range map[string]int{"": DefaultReconcileMaxGraphCalls, "5": 5, "0": 0} {
		s, err := Load(env(v))
		if err != nil || s.ReconcileMaxGraphCalls != want {
			t.Fatalf("%q: %d, %v; want %d", v, s.ReconcileMaxGraphCalls, err, want)
		}
	}
	if _, err := Load(env("-1")); err == nil || !strings.Contains(err.Error(), EnvReconcileBudget) {
		t.Fatalf("bad value accepted: %v", err)
	}
}

func TestApproverCacheTTL(t *testing.T) {
	for v, want := range map[string]time.Duration{"": time.Minute, "PT0S": 0, "0": 0, "PT30S": 30 * time.Second, "PT10M": 10 * time.Minute} {
		m := good()
		m[EnvApproverCacheTTL] = v
		s, err := Load(env(m))
		if err != nil || s.ApproverCacheTTL != want {
			t.Fatalf("%q: %v %v, want %v", v, s.ApproverCacheTTL, err, want)
		}
	}
	for _, v := range []string{"PT11M", "P1D", "soon", "-PT1M"} {
		m := good()
		m[EnvApproverCacheTTL] = v
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), EnvApproverCacheTTL) {
			t.Fatalf("%q: error %v does not name %s", v, err, EnvApproverCacheTTL)
		}
	}
}

func TestRedeliveryPatience(t *testing.T) {
	for v, want := range map[string]time.Duration{"": DefaultRedeliveryPatience, "PT0S": 0, "PT30S": 30 * time.Second, "PT4M": 4 * time.Minute} {
		m := good()
		m[EnvPatience] = v
		s, err := Load(env(m))
		if err != nil || s.RedeliveryPatience != want {
			t.Fatalf("%q: %v %v, want %v", v, s.RedeliveryPatience, err, want)
		}
	}
	for _, v := range []string{"PT5M", "forever", "P1D"} {
		m := good()
		m[EnvPatience] = v
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), EnvPatience) {
			t.Fatalf("%q: error %v does not name %s", v, err, EnvPatience)
		}
	}
}

func TestReplicationWindow(t *testing.T) {
	for v, want := range map[string]time.Duration{"": DefaultReplicationWindow, "PT1S": time.Second, "PT5M": 5 * time.Minute, "PT1H": time.Hour} {
		m := good()
		m[EnvReplication] = v
		s, err := Load(env(m))
		if err != nil || s.ReplicationWindow != want {
			t.Fatalf("%q: %v %v, want %v", v, s.ReplicationWindow, err, want)
		}
	}
	for _, v := range []string{"PT0S", "PT2H", "soon", "P1D"} {
		m := good()
		m[EnvReplication] = v
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), EnvReplication) {
			t.Fatalf("%q: error %v does not name %s", v, err, EnvReplication)
		}
	}
}

func TestARMAndAccessBounds(t *testing.T) {
	s, err := Load(env(good()))
	if err != nil || s.ARMBaseURL != DefaultARMBaseURL || s.ARMScope != "https://management.azure.com/.default" ||
		s.TokenLifetime != DefaultTokenLifetime || s.RBACPropagation != DefaultRBACPropagation {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	m := good()
	m[EnvARMBaseURL], m[EnvTokenLifetime], m[EnvRBACPropagation] = "http://127.0.0.1:9999/", "PT60M", "PT3M"
	if s, err = Load(env(m)); err != nil || s.ARMScope != "http://127.0.0.1:9999/.default" || s.TokenLifetime != time.Hour || s.RBACPropagation != 3*time.Minute {
		t.Fatalf("set: %+v %v", s, err)
	}
	for name, v := range map[string]string{EnvARMBaseURL: "http://arm.example.com", EnvARMScope: "https://management.azure.com",
		EnvTokenLifetime: "PT1M", EnvRBACPropagation: "P2D"} {
		m := good()
		m[name] = v
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: error %v does not name it", name, v, err)
		}
	}
}
