package devhost

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults of the %SETTING% placeholders (docs/design.md, The contract (functions)). The real host has no
// defaults and fails when they are unset; the stand-in applies these.
var DefaultSettings = map[string]string{
	"JIT_REQUESTS_QUEUE": "access-requests",
	"JIT_SWEEP_SCHEDULE": "0 */1 * * * *",
	"JIT_AUDIT_HUB":      "insights-logs-auditlogs",
}

// Binding is one binding of a function.json, with %SETTING% resolved.
type Binding struct {
	Type          string   `json:"type"`
	Direction     string   `json:"direction"`
	Name          string   `json:"name"`
	QueueName     string   `json:"queueName,omitempty"`
	Connection    string   `json:"connection,omitempty"`
	Schedule      string   `json:"schedule,omitempty"`
	RunOnStartup  bool     `json:"runOnStartup,omitempty"`
	EventHubName  string   `json:"eventHubName,omitempty"`
	Cardinality   string   `json:"cardinality,omitempty"`
	DataType      string   `json:"dataType,omitempty"`
	AuthLevel     string   `json:"authLevel,omitempty"`
	Methods       []string `json:"methods,omitempty"`
	Route         string   `json:"route,omitempty"`
	ConsumerGroup string   `json:"consumerGroup,omitempty"`
}

// Retry is a function's retry policy (function.json "retry").
type Retry struct {
	Strategy        string `json:"strategy"`
	MaxRetryCount   int    `json:"maxRetryCount"`
	DelayInterval   string `json:"delayInterval,omitempty"`
	MinimumInterval string `json:"minimumInterval,omitempty"`
	MaximumInterval string `json:"maximumInterval,omitempty"`
}

// Function is one functions/<Name>/function.json.
type Function struct {
	Name     string    `json:"-"`
	Bindings []Binding `json:"bindings"`
	Retry    *Retry    `json:"retry,omitempty"`
}

// Trigger returns the function's trigger binding.
func (f Function) Trigger() Binding {
	for _, b := range f.Bindings {
		if strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			return b
		}
	}
	return Binding{}
}

var placeholder = regexp.MustCompile(`%([A-Za-z0-9_.:-]+)%`)

// resolve replaces %X% from settings (then DefaultSettings); an unset setting
// is an error, as in the real host.
func resolve(s string, settings map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := settings[name]; ok && v != "" {
			return v
		}
		if v, ok := DefaultSettings[name]; ok {
			return v
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("setting %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// LoadFunctions reads <dir>/functions/*/function.json (the source layout) or,
// when there is none, <dir>/*/function.json (the deployed layout), resolving
// %SETTING% placeholders.
func LoadFunctions(dir string, settings map[string]string) ([]Function, error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "functions", "*", "function.json"))
	if len(paths) == 0 {
		paths, _ = filepath.Glob(filepath.Join(dir, "*", "function.json"))
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no function.json under %s", dir)
	}
	sort.Strings(paths)
	var fns []Function
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var f Function
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		f.Name = filepath.Base(filepath.Dir(p))
		for i := range f.Bindings {
			bd := &f.Bindings[i]
			for _, field := range []*string{&bd.QueueName, &bd.Schedule, &bd.EventHubName, &bd.Route} {
				v, err := resolve(*field, settings)
				if err != nil {
					return nil, fmt.Errorf("function %s: %v", f.Name, err)
				}
				*field = v
			}
		}
		if f.Trigger().Type == "" {
			return nil, fmt.Errorf("function %s has no trigger binding", f.Name)
		}
		fns = append(fns, f)
	}
	return fns, nil
}

// parseTimeSpan reads "hh:mm:ss" (or "d.hh:mm:ss").
func parseTimeSpan(s string) (time.Duration, bool) {
	days := 0
	if d, rest, ok := strings.Cut(s, "."); ok && !strings.Contains(d, ":") {
		if _, err := fmt.Sscanf(d, "%d", &days); err != nil {
			return 0, false
		}
		s = rest
	}
	var h, m, sec int
	if n, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil || n != 3 {
		return 0, false
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, true
}

// hostSettings reads host.json's routePrefix and serviceBus.maxConcurrentCalls.
func hostSettings(dir string) (routePrefix string, concurrency int) {
	routePrefix, concurrency = "api", 0
	b, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		return
	}
	var h struct {
		Extensions struct {
			HTTP *struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
			ServiceBus struct {
				MaxConcurrentCalls int `json:"maxConcurrentCalls"`
			} `json:"serviceBus"`
		} `json:"extensions"`
	}
	if json.Unmarshal(b, &h) != nil {
		return
	}
	if h.Extensions.HTTP != nil && h.Extensions.HTTP.RoutePrefix != nil {
		routePrefix = strings.Trim(*h.Extensions.HTTP.RoutePrefix, "/")
	}
	return routePrefix, h.Extensions.ServiceBus.MaxConcurrentCalls
}
