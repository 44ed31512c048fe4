// Package devhost is a local stand-in for the Azure Functions host, for the
// sandbox (`make run`) and end-to-end tests. It reads functions/*/function.json,
// resolves %SETTING% placeholders, and drives the custom handler exactly as
// the real host does (see handlers/testdata/README.md for the sources):
//
//   - serviceBusTrigger: an in-memory queue delivering POST /<Function> with
//     the double-encoded body and JSON-encoded metadata, redelivering with an
//     incremented DeliveryCount on failure (non-2xx or an answer that is not
//     a JSON object) up to MaxDeliveryCount, then dead-lettering; scheduled
//     messages (Schedule / CancelScheduled) like ScheduledEnqueueTimeUtc;
//     duplicate detection on MessageId (Options.DuplicateDetectionWindow);
//   - timerTrigger: a six-field NCRONTAB schedule (robfig/cron with seconds);
//   - eventHubTrigger (cardinality many, dataType string): DeliverAuditBatch,
//     retried under the function's retry policy, then moved past;
//   - httpTrigger: a front listener forwarding /<routePrefix>/... to the
//     handler (enableForwardingHttpRequest), enforcing authLevel function
//     with the `code` query parameter or the x-functions-key header, and
//     playing App Service Authentication: client-supplied principal headers
//     removed, a loopback caller signed in as the local operator
//     (Options.SignIn, signin.go).
//
// It also offers /_devhost/ endpoints so that a CLI can send events to the
// sandbox. Loopback only; it is not a security boundary.
//
// Where things are: function.json and host.json in functions.go; the queue
// in queue.go, timers in timers.go, Event Hubs in eventhubs.go, the front
// listener (/_devhost and the forwarded HTTP functions) in front.go and the
// sign-in it plays in signin.go; invoking the handler in invoke.go and the
// payloads it sends in payload.go.
package devhost

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Options configure the stand-in. Zero values take the defaults.
type Options struct {
	// Dir is the function app root (host.json, functions/<Name>/function.json).
	Dir string
	// Settings resolve %SETTING% placeholders (DefaultSettings fill the gaps).
	Settings map[string]string
	// HandlerURL is the custom handler, e.g. http://127.0.0.1:8080.
	HandlerURL string
	// Addr is the front listener (default 127.0.0.1:7071).
	Addr string
	// FunctionKey, when set, is required by authLevel function/admin routes.
	FunctionKey string
	// MaxDeliveryCount before dead-lettering (default 10, as Service Bus).
	MaxDeliveryCount int
	// RedeliveryDelay between a failed delivery and the next (default 200 ms).
	RedeliveryDelay time.Duration
	// MaxRetryDelay caps the Event Hubs retry policy's waits (default 1 s).
	MaxRetryDelay time.Duration
	// DuplicateDetectionWindow, when set, turns on the queue's duplicate
	// detection, as a Service Bus queue with requiresDuplicateDetection (the
	// deployment's queue has it, with a window of PT1H:
	// infra/modules/servicebus.bicep): a message sent with a MessageId that
	// was sent within the window is accepted and dropped, scheduled messages
	// included both ways (Service Bus docs, "Duplicate detection"). Zero: off,
	// as a queue created without it; a test may then enqueue one message
	// twice to stand for a redelivery.
	DuplicateDetectionWindow time.Duration
	// Concurrency of queue deliveries (default host.json
	// serviceBus.maxConcurrentCalls, else 4).
	Concurrency int
	// ReadyTimeout bounds the wait for the handler (default 30 s).
	ReadyTimeout time.Duration
	// Logger receives JSON logs (default: JSON to stdout). Bodies are never logged.
	Logger *slog.Logger
	// Client talks to the handler (default: no timeout beyond the context).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SignIn is how the stand-in plays App Service Authentication on the
	// forwarded HTTP functions (default SignInOperator: loopback callers are
	// signed in as the local operator with ReadRole; signin.go).
	SignIn SignInMode
	// ReadRole is the app role the local operator holds (default
	// DefaultReadRole, the handler's default JIT_READ_ROLE).
	ReadRole string
}

// Host is the running stand-in.
type Host struct {
	o           Options
	fns         []Function
	routePrefix string
	handler     *url.URL
	log         *slog.Logger

	queueFn  *Function // the serviceBusTrigger function
	timerFns []*Function
	auditFn  *Function

	mu sync.Mutex
	// The queue (queue.go).
	queue     []*Message
	inflight  int // queued, being delivered or waiting for redelivery
	idle      *sync.Cond
	seq       int64
	scheduled map[int64]*time.Timer
	dead      []DeadLetter
	sentIDs   map[string]time.Time // MessageIds sent within the duplicate-detection window
	sentOrder []string             // the same, oldest first
	dupes     []string             // MessageIds dropped as duplicates
	wake      chan struct{}
	// Event Hubs (eventhubs.go) and timers (timers.go).
	ehSeq    int64
	lastTick map[string]time.Time
	// Lifecycle.
	started bool
	stopped bool

	cron  *cron.Cron
	ln    net.Listener
	front *http.Server // front.go
	wg    sync.WaitGroup
}

// New reads the function app and prepares the stand-in; Start runs it.
func New(o Options) (*Host, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:7071"
	}
	if o.MaxDeliveryCount <= 0 {
		o.MaxDeliveryCount = 10
	}
	if o.RedeliveryDelay <= 0 {
		o.RedeliveryDelay = 200 * time.Millisecond
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = time.Second
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadRole == "" {
		o.ReadRole = DefaultReadRole
	}
	hu, err := url.Parse(o.HandlerURL)
	if err != nil || hu.Host == "" {
		return nil, fmt.Errorf("devhost: handler URL %q is not an absolute URL", o.HandlerURL)
	}
	fns, err := LoadFunctions(o.Dir, o.Settings)
	if err != nil {
		return nil, fmt.Errorf("devhost: %w", err)
	}
	prefix, conc := hostSettings(o.Dir)
	if o.Concurrency <= 0 {
		o.Concurrency = conc
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	h := &Host{o: o, fns: fns, routePrefix: prefix, handler: hu, log: o.Logger.With("component", "devhost"),
		scheduled: map[int64]*time.Timer{}, sentIDs: map[string]time.Time{}, lastTick: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	h.idle = sync.NewCond(&h.mu)
	for i := range h.fns {
		f := &h.fns[i]
		switch strings.ToLower(f.Trigger().Type) {
		case "servicebustrigger":
			h.queueFn = f
		case "timertrigger":
			if _, err := parseSchedule(f.Trigger().Schedule); err != nil {
				return nil, fmt.Errorf("devhost: function %s: %v", f.Name, err)
			}
			h.timerFns = append(h.timerFns, f)
		case "eventhubtrigger":
			h.auditFn = f
		}
	}
	return h, nil
}

// Functions returns the loaded functions (placeholders resolved).
func (h *Host) Functions() []Function { return h.fns }

// Start waits for the handler to answer, then opens the front listener and
// starts the queue workers and the timers. Everything stops when ctx ends.
func (h *Host) Start(ctx context.Context) error {
	if err := h.waitForHandler(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", h.o.Addr)
	if err != nil {
		return fmt.Errorf("devhost: %w", err)
	}
	h.ln = ln
	h.front = &http.Server{Handler: h.frontHandler(), ReadHeaderTimeout: 10 * time.Second}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		_ = h.front.Serve(ln)
	}()
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	h.startWorkers(ctx)
	h.startTimers(ctx)
	go func() {
		<-ctx.Done()
		h.stop()
	}()
	h.log.Info("devhost started", "url", h.URL(), "handler", h.handler.String(), "functions", len(h.fns))
	return nil
}

func (h *Host) stop() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.stopped = true
	for seq, t := range h.scheduled {
		t.Stop()
		delete(h.scheduled, seq)
	}
	h.idle.Broadcast()
	h.mu.Unlock()
	if h.cron != nil {
		<-h.cron.Stop().Done()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h.front != nil {
		_ = h.front.Shutdown(sctx)
	}
}

// Wait blocks until the stand-in has stopped (its context ended).
func (h *Host) Wait() { h.wg.Wait() }

// URL is the front listener's base URL.
func (h *Host) URL() string {
	if h.ln == nil {
		return ""
	}
	return "http://" + h.ln.Addr().String()
}
