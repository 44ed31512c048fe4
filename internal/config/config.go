// Package config reads and validates the settings (docs/design.md, The contract) from the
// environment. A bad or missing setting stops the start with an error that
// names the setting.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Setting names (docs/design.md, The contract (settings, functions)).
const (
	EnvPort             = "FUNCTIONS_CUSTOMHANDLER_PORT"
	EnvTablesConn       = "JIT_TABLES_CONNECTION_STRING"
	EnvTablesEndpoint   = "JIT_TABLES_ENDPOINT"
	EnvTablePrefix      = "JIT_TABLE_PREFIX"
	EnvGraphBaseURL     = "JIT_GRAPH_BASE_URL"
	EnvGraphScope       = "JIT_GRAPH_SCOPE"
	EnvProfilesFile     = "JIT_PROFILES_FILE"
	EnvServiceBusNS     = "JIT_SERVICEBUS_NAMESPACE"
	EnvNotifyTopic      = "JIT_NOTIFICATIONS_TOPIC"
	EnvClientID         = "AZURE_CLIENT_ID"
	EnvRequestsQueue    = "JIT_REQUESTS_QUEUE"
	EnvSweepSchedule    = "JIT_SWEEP_SCHEDULE"
	EnvAuditHub         = "JIT_AUDIT_HUB"
	EnvLogLevel         = "JIT_LOG_LEVEL"
	EnvReconcileBudget  = "JIT_RECONCILE_MAX_GRAPH_CALLS"
	EnvContinuationKey  = "JIT_CONTINUATION_KEY"
	EnvExpiringLead     = "JIT_EXPIRING_NOTICE_LEAD"
	EnvApproverCacheTTL = "JIT_APPROVER_CACHE_TTL"
	EnvPatience         = "JIT_REDELIVERY_PATIENCE"
	EnvReplication      = "JIT_REPLICATION_WINDOW"
	EnvARMBaseURL       = "JIT_ARM_BASE_URL"
	EnvARMScope         = "JIT_ARM_SCOPE"
	EnvTokenLifetime    = "JIT_TOKEN_LIFETIME"
	EnvRBACPropagation  = "JIT_RBAC_PROPAGATION"
	// DefaultARMBaseURL is Azure Resource Manager in the global cloud.
	DefaultARMBaseURL = "https://management.azure.com"
	// DefaultTokenLifetime and DefaultRBACPropagation: the defaults of
	// JIT_TOKEN_LIFETIME (Entra's access tokens live 60-90 minutes) and
	// JIT_RBAC_PROPAGATION (README "How long access lasts after the end").
	DefaultTokenLifetime   = 90 * time.Minute
	DefaultRBACPropagation = 10 * time.Minute
	// DefaultReplicationWindow is the default of JIT_REPLICATION_WINDOW:
	// Microsoft describes Entra's replication as typically completing
	// within seconds (README "The real directory"); a minute is ten times
	// that, and a longer window only delays conclusions drawn from reads.
	DefaultReplicationWindow = time.Minute
	// DefaultRedeliveryPatience is the default of JIT_REDELIVERY_PATIENCE.
	DefaultRedeliveryPatience = 2 * time.Minute
	DefaultGraphBaseURL       = "https://graph.microsoft.com/v1.0"
	DefaultQueue              = "access-requests"
	// DefaultReconcileMaxGraphCalls is the default of JIT_RECONCILE_MAX_GRAPH_CALLS.
	DefaultReconcileMaxGraphCalls = 20
	DefaultSchedule               = "0 */1 * * * *"
	DefaultAuditHub               = "insights-logs-auditlogs"
)

// Settings are the validated settings.
type Settings struct {
	Port             int
	TablesConnString string
	TablesEndpoint   string
	TablePrefix      string
	GraphBaseURL     string
	GraphScope       string
	// ARMBaseURL and ARMScope: Azure Resource Manager for azure-role
	// profiles (sovereign clouds, the simulator).
	ARMBaseURL string
	ARMScope   string
	// TokenLifetime bounds an Entra access token's life (accessGoneBy of
	// group grants); RBACPropagation bounds how long a deleted role
	// assignment may still authorize (accessGoneBy of azure-role grants).
	TokenLifetime      time.Duration
	RBACPropagation    time.Duration
	ProfilesFile       string
	ServiceBusNS       string
	NotificationsTopic string
	ClientID           string
	RequestsQueue      string
	SweepSchedule      string
	AuditHub           string
	LogLevel           string
	ContinuationKey    string
	// ExpiringLead is how long before a grant's end the "expiring"
	// notification is published (default 10 minutes; PT0S turns it off).
	ExpiringLead time.Duration
	// ReconcileMaxGraphCalls bounds the Graph calls of drift reconciliation
	// per sweep (default 20; 0 turns reconciliation off).
	ReconcileMaxGraphCalls int
	// ApproverCacheTTL is how long a positive approver resolution is reused
	// (default 1 minute, at most 10 minutes; 0 turns the cache off).
	ApproverCacheTTL time.Duration
	// RedeliveryPatience is how long a redelivered event whose processing
	// fails transiently is retried within the invocation (default 2 minutes,
	// at most 4 minutes — under host.json's functionTimeout; 0: off).
	RedeliveryPatience time.Duration
	// ReplicationWindow is how long a directory read may lag a write
	// (docs/design.md, The real directory): reads made sooner after a write decide nothing, and
	// audit records are checked against Graph this long after they arrive
	// (default 1 minute, from 1 second to 1 hour).
	ReplicationWindow time.Duration
}

// SettingError names the setting at fault.
type SettingError struct {
	Name   string
	Reason string
}

func (e *SettingError) Error() string { return fmt.Sprintf("setting %s: %s", e.Name, e.Reason) }

var (
	prefixPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,19}$`)
	guidPattern   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	entityPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,259}$`)
	fqdnPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})+$`)
)

// Load reads the settings from getenv (os.Getenv in production). All
// problems are reported together, each naming its setting.
func Load(getenv func(string) string) (Settings, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(n string) string { return strings.TrimSpace(getenv(n)) }
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, &SettingError{Name: name, Reason: fmt.Sprintf(format, a...)})
	}
	s := Settings{
		TablesConnString:   get(EnvTablesConn),
		TablesEndpoint:     get(EnvTablesEndpoint),
		TablePrefix:        orDefault(get(EnvTablePrefix), "jit"),
		GraphBaseURL:       strings.TrimRight(orDefault(get(EnvGraphBaseURL), DefaultGraphBaseURL), "/"),
		GraphScope:         get(EnvGraphScope),
		ARMBaseURL:         strings.TrimRight(orDefault(get(EnvARMBaseURL), DefaultARMBaseURL), "/"),
		ARMScope:           get(EnvARMScope),
		ProfilesFile:       get(EnvProfilesFile),
		ServiceBusNS:       get(EnvServiceBusNS),
		NotificationsTopic: get(EnvNotifyTopic),
		ClientID:           get(EnvClientID),
		RequestsQueue:      orDefault(get(EnvRequestsQueue), DefaultQueue),
		SweepSchedule:      orDefault(get(EnvSweepSchedule), DefaultSchedule),
		AuditHub:           orDefault(get(EnvAuditHub), DefaultAuditHub),
		LogLevel:           orDefault(get(EnvLogLevel), "info"),
		ContinuationKey:    get(EnvContinuationKey),
	}
	portStr := get(EnvPort)
	if portStr == "" {
		bad(EnvPort, "is not set (the Functions host sets it; set it by hand to run outside the host)")
	} else if p, err := strconv.Atoi(portStr); err != nil || p < 1 || p > 65535 {
		bad(EnvPort, "%q is not a port number (1-65535)", portStr)
	} else {
		s.Port = p
	}
	switch {
	case s.TablesConnString == "" && s.TablesEndpoint == "":
		errs = append(errs, &SettingError{Name: EnvTablesConn + " or " + EnvTablesEndpoint,
			Reason: "neither is set: set " + EnvTablesEndpoint + " (managed identity) or " + EnvTablesConn})
	case s.TablesConnString != "" && s.TablesEndpoint != "":
		errs = append(errs, &SettingError{Name: EnvTablesConn + " and " + EnvTablesEndpoint, Reason: "both are set: set only one"})
	case s.TablesConnString != "":
		if !strings.Contains(s.TablesConnString, "AccountName=") && !strings.Contains(s.TablesConnString, "UseDevelopmentStorage=true") &&
			!strings.Contains(s.TablesConnString, "TableEndpoint=") {
			bad(EnvTablesConn, "is not a storage connection string (expected AccountName=...;AccountKey=... or TableEndpoint=...)")
		}
	default:
		if err := checkURL(s.TablesEndpoint); err != nil {
			bad(EnvTablesEndpoint, "%v", err)
		}
	}
	if !prefixPattern.MatchString(s.TablePrefix) {
		bad(EnvTablePrefix, "%q must be 1-20 letters and digits, starting with a letter", s.TablePrefix)
	}
	if err := checkURL(s.GraphBaseURL); err != nil {
		bad(EnvGraphBaseURL, "%v", err)
	} else if s.GraphScope == "" {
		u, _ := url.Parse(s.GraphBaseURL)
		s.GraphScope = u.Scheme + "://" + u.Host + "/.default"
	}
	if err := checkURL(s.ARMBaseURL); err != nil {
		bad(EnvARMBaseURL, "%v", err)
	} else if s.ARMScope == "" {
		u, _ := url.Parse(s.ARMBaseURL)
		s.ARMScope = u.Scheme + "://" + u.Host + "/.default"
	}
	if s.ARMScope != "" && !strings.HasSuffix(s.ARMScope, "/.default") {
		bad(EnvARMScope, "%q must end in /.default", s.ARMScope)
	}
	s.TokenLifetime = durationSetting(get, bad, EnvTokenLifetime, DefaultTokenLifetime, 5*time.Minute, 24*time.Hour,
		"Entra access tokens live 60-90 minutes by default; configurable token lifetimes range from 10 minutes to 1 day")
	s.RBACPropagation = durationSetting(get, bad, EnvRBACPropagation, DefaultRBACPropagation, time.Minute, 24*time.Hour,
		"measure it on your cluster (README)")
	if s.GraphScope != "" && !strings.HasSuffix(s.GraphScope, "/.default") {
		bad(EnvGraphScope, "%q must end in /.default (an application permission scope)", s.GraphScope)
	}
	if s.ProfilesFile == "" {
		exe, err := os.Executable()
		if err != nil {
			bad(EnvProfilesFile, "is not set and the executable's folder is unknown: %v", err)
		} else {
			s.ProfilesFile = filepath.Join(filepath.Dir(exe), "profiles.json")
		}
	}
	if s.ServiceBusNS != "" && !fqdnPattern.MatchString(s.ServiceBusNS) {
		bad(EnvServiceBusNS, "%q must be a fully-qualified namespace such as mybus.servicebus.windows.net", s.ServiceBusNS)
	}
	if s.NotificationsTopic != "" {
		if s.ServiceBusNS == "" {
			bad(EnvNotifyTopic, "is set but %s is not: notifications are sent through that namespace", EnvServiceBusNS)
		} else if !entityPattern.MatchString(s.NotificationsTopic) {
			bad(EnvNotifyTopic, "%q is not a valid topic name", s.NotificationsTopic)
		}
	}
	if s.ClientID != "" && !guidPattern.MatchString(s.ClientID) {
		bad(EnvClientID, "%q must be the managed identity's client id (a GUID)", s.ClientID)
	}
	if !entityPattern.MatchString(s.RequestsQueue) {
		bad(EnvRequestsQueue, "%q is not a valid queue name", s.RequestsQueue)
	}
	if _, err := ParseSchedule(s.SweepSchedule); err != nil {
		bad(EnvSweepSchedule, "%v", err)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad(EnvLogLevel, "%q must be debug, info, warn or error", s.LogLevel)
	}
	s.ReconcileMaxGraphCalls = DefaultReconcileMaxGraphCalls
	if v := get(EnvReconcileBudget); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 10000 {
			bad(EnvReconcileBudget, "%q is not a number of calls (0-10000)", v)
		} else {
			s.ReconcileMaxGraphCalls = n
		}
	}
	s.ExpiringLead = 10 * time.Minute
	if v := get(EnvExpiringLead); v != "" {
		if v == "PT0S" || v == "0" {
			s.ExpiringLead = 0
		} else if d, err := access.ParseDuration(v); err != nil {
			bad(EnvExpiringLead, "%v", err)
		} else {
			s.ExpiringLead = d
		}
	}
	s.ApproverCacheTTL = time.Minute
	if v := get(EnvApproverCacheTTL); v != "" {
		if v == "PT0S" || v == "0" {
			s.ApproverCacheTTL = 0
		} else if d, err := access.ParseDuration(v); err != nil {
			bad(EnvApproverCacheTTL, "%v", err)
		} else if d > 10*time.Minute {
			bad(EnvApproverCacheTTL, "%q is longer than PT10M: a removed approver could approve for that long", v)
		} else {
			s.ApproverCacheTTL = d
		}
	}
	s.RedeliveryPatience = DefaultRedeliveryPatience
	if v := get(EnvPatience); v != "" {
		if v == "PT0S" || v == "0" {
			s.RedeliveryPatience = 0
		} else if d, err := access.ParseDuration(v); err != nil {
			bad(EnvPatience, "%v", err)
		} else if d > 4*time.Minute {
			bad(EnvPatience, "%q is longer than PT4M: the invocation would outlive host.json's functionTimeout (5 minutes)", v)
		} else {
			s.RedeliveryPatience = d
		}
	}
	s.ReplicationWindow = DefaultReplicationWindow
	if v := get(EnvReplication); v != "" {
		if d, err := access.ParseDuration(v); err != nil {
			bad(EnvReplication, "%v", err)
		} else if d < time.Second || d > time.Hour {
			bad(EnvReplication, "%q is outside PT1S..PT1H: reads lag writes by seconds, and a longer window delays every check of an audit record", v)
		} else {
			s.ReplicationWindow = d
		}
	}
	if s.ContinuationKey != "" && len(s.ContinuationKey) < 16 {
		bad(EnvContinuationKey, "must be at least 16 characters")
	}
	return s, errors.Join(errs...)
}

// ParseSchedule parses a six-field NCRONTAB expression (with seconds), as the
// Functions timer trigger uses ("0 */1 * * * *").
func ParseSchedule(expr string) (cron.Schedule, error) {
	if len(strings.Fields(expr)) != 6 {
		return nil, fmt.Errorf("%q must be a six-field NCRONTAB expression with seconds, e.g. \"0 */1 * * * *\"", expr)
	}
	sch, err := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow).Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid NCRONTAB expression: %v", expr, err)
	}
	return sch, nil
}

// durationSetting reads an ISO 8601 duration setting within [lo, hi]
// (default def when unset); a bad value is reported naming the setting.
func durationSetting(get func(string) string, bad func(name, format string, a ...any), name string, def, lo, hi time.Duration, why string) time.Duration {
	v := get(name)
	if v == "" {
		return def
	}
	d, err := access.ParseDuration(v)
	switch {
	case err != nil:
		bad(name, "%v", err)
	case d < lo || d > hi:
		bad(name, "%q is outside %s..%s (%s)", v, access.Duration(lo), access.Duration(hi), why)
	default:
		return d
	}
	return def
}

// SweepInterval estimates the interval between two sweeps of a schedule.
func SweepInterval(expr string, from time.Time) time.Duration {
	sch, err := ParseSchedule(expr)
	if err != nil {
		return time.Minute
	}
	a := sch.Next(from)
	return sch.Next(a).Sub(a)
}

// checkURL accepts https URLs, and http only for loopback hosts (simulators).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%q: plain http is only allowed for loopback addresses", raw)
	}
	return fmt.Errorf("%q must use https", raw)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
