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
package devhost

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
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

// DeadLetter is a message that failed MaxDeliveryCount deliveries.
type DeadLetter struct {
	Message
	Body   string    `json:"body"`
	Reason string    `json:"reason"`
	At     time.Time `json:"deadLetteredAt"`
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

	mu        sync.Mutex
	queue     []*Message
	inflight  int // queued, being delivered or waiting for redelivery
	idle      *sync.Cond
	seq       int64
	scheduled map[int64]*time.Timer
	dead      []DeadLetter
	sentIDs   map[string]time.Time // MessageIds sent within the duplicate-detection window
	sentOrder []string             // the same, oldest first
	dupes     []string             // MessageIds dropped as duplicates
	ehSeq     int64
	lastTick  map[string]time.Time
	wake      chan struct{}
	started   bool
	stopped   bool

	cron  *cron.Cron
	ln    net.Listener
	front *http.Server
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
	for range h.o.Concurrency {
		h.wg.Add(1)
		go h.worker(ctx)
	}
	h.cron = cron.New(cron.WithSeconds(), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	for _, f := range h.timerFns {
		sch, _ := parseSchedule(f.Trigger().Schedule)
		name := f.Name
		h.cron.Schedule(sch, cron.FuncJob(func() { _ = h.FireTimer(ctx, name) }))
	}
	h.cron.Start()
	h.signal()
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

// waitForHandler polls the handler until it answers anything (as the real
// host's IsWorkerReady does with GET /).
func (h *Host) waitForHandler(ctx context.Context) error {
	deadline := time.Now().Add(h.o.ReadyTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.handler.String()+"/", nil)
		resp, err := h.o.Client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devhost: the handler at %s did not answer within %s", h.handler, h.o.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// invoke POSTs an invocation to the handler. The invocation succeeded when
// the answer is 2xx with a JSON object body (the real host calls
// EnsureSuccessStatusCode and parses the body as HttpScriptInvocationResult).
func (h *Host) invoke(ctx context.Context, function string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.handler.String()+"/"+function, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	id := uuid.NewString()
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", "devhost")
	req.Header.Set("User-Agent", "Azure-Functions-Host/devhost")
	start := h.o.Now()
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("invoking %s: %w", function, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res map[string]json.RawMessage
	switch {
	case resp.StatusCode/100 != 2:
		err = fmt.Errorf("%s answered %d", function, resp.StatusCode)
	case json.Unmarshal(b, &res) != nil || res == nil:
		err = fmt.Errorf("%s answered %d without a JSON object body", function, resp.StatusCode)
	}
	h.log.Info("invocation", "function", function, "invocationId", id, "status", resp.StatusCode,
		"succeeded", err == nil, "durationMs", h.o.Now().Sub(start).Milliseconds())
	return err
}

// ---- Service Bus queue ----

// QueueName is the resolved queue of the serviceBusTrigger function ("" if none).
func (h *Host) QueueName() string {
	if h.queueFn == nil {
		return ""
	}
	return h.queueFn.Trigger().QueueName
}

func messageIDOf(body []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &ev) == nil && ev.ID != "" && len(ev.ID) <= 128 {
		return ev.ID
	}
	return uuid.NewString()
}

// Enqueue sends a message to the requests queue and returns its message id
// (the CloudEvent id when the body has one, as `jitaccess send` sets it).
// With duplicate detection, a message whose id was sent within the window is
// accepted and dropped.
func (h *Host) Enqueue(body []byte) string {
	m := h.newMessage(body)
	if h.duplicate(m.MessageID) {
		return m.MessageID
	}
	h.push(m)
	return m.MessageID
}

// duplicate logs a sent MessageId and reports whether it was sent within the
// duplicate-detection window (the message is then dropped). The window runs
// from the send that was kept; a dropped duplicate does not extend it (the
// Service Bus docs do not say; this is the stand-in's choice).
func (h *Host) duplicate(id string) bool {
	w := h.o.DuplicateDetectionWindow
	if w <= 0 {
		return false
	}
	now := h.o.Now()
	h.mu.Lock()
	for len(h.sentOrder) > 0 {
		old := h.sentOrder[0]
		if t, ok := h.sentIDs[old]; ok && now.Sub(t) < w {
			break
		}
		delete(h.sentIDs, old)
		h.sentOrder = h.sentOrder[1:]
	}
	if t, ok := h.sentIDs[id]; ok && now.Sub(t) < w {
		h.dupes = append(h.dupes, id)
		h.mu.Unlock()
		h.log.Info("duplicate message dropped", "messageId", id)
		return true
	}
	h.sentIDs[id] = now
	h.sentOrder = append(h.sentOrder, id)
	h.mu.Unlock()
	return false
}

// Duplicates returns the MessageIds dropped by duplicate detection, in order.
func (h *Host) Duplicates() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dupes...)
}

func (h *Host) newMessage(body []byte) *Message {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	return &Message{MessageID: messageIDOf(body), SequenceNumber: seq, Body: append([]byte(nil), body...),
		ContentType: "application/cloudevents+json; charset=utf-8"}
}

func (h *Host) push(m *Message) {
	h.mu.Lock()
	m.EnqueuedTime = h.o.Now().UTC()
	h.queue = append(h.queue, m)
	h.inflight++
	h.mu.Unlock()
	h.signal()
}

func (h *Host) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Schedule enqueues body at the given time (a scheduled message) and returns
// its sequence number, usable with CancelScheduled. With duplicate
// detection, a message whose id was sent within the window is accepted (it
// gets a sequence number, as Service Bus answers) and dropped.
func (h *Host) Schedule(body []byte, at time.Time) int64 {
	m := h.newMessage(body)
	if h.duplicate(m.MessageID) {
		return m.SequenceNumber
	}
	d := at.Sub(h.o.Now())
	if d < 0 {
		d = 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scheduled[m.SequenceNumber] = time.AfterFunc(d, func() {
		h.mu.Lock()
		_, still := h.scheduled[m.SequenceNumber]
		delete(h.scheduled, m.SequenceNumber)
		stopped := h.stopped
		h.mu.Unlock()
		if still && !stopped {
			h.push(m)
		}
	})
	return m.SequenceNumber
}

// CancelScheduled cancels a scheduled message; false when it is unknown or
// already enqueued.
func (h *Host) CancelScheduled(seq int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.scheduled[seq]
	if !ok {
		return false
	}
	t.Stop()
	delete(h.scheduled, seq)
	return true
}

// ScheduledCount is the number of scheduled messages not yet enqueued.
func (h *Host) ScheduledCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.scheduled)
}

// DeadLetters returns the dead-lettered messages, oldest first.
func (h *Host) DeadLetters() []DeadLetter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]DeadLetter(nil), h.dead...)
}

// WaitIdle waits until every enqueued message is completed or dead-lettered
// (scheduled messages not yet due do not count).
func (h *Host) WaitIdle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		h.mu.Lock()
		h.idle.Broadcast()
		h.mu.Unlock()
	})
	defer stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.inflight > 0 && ctx.Err() == nil && !h.stopped {
		h.idle.Wait()
	}
	return ctx.Err()
}

func (h *Host) worker(ctx context.Context) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		var m *Message
		if len(h.queue) > 0 {
			m, h.queue = h.queue[0], h.queue[1:]
		}
		more := len(h.queue) > 0
		h.mu.Unlock()
		if more {
			h.signal()
		}
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-h.wake:
				continue
			}
		}
		h.deliver(ctx, m)
	}
}

func (h *Host) done() {
	h.mu.Lock()
	h.inflight--
	h.idle.Broadcast()
	h.mu.Unlock()
}

func (h *Host) deliver(ctx context.Context, m *Message) {
	if h.queueFn == nil {
		h.deadLetter(m, "no serviceBusTrigger function")
		return
	}
	m.DeliveryCount++
	ns := h.o.Settings["ServiceBusConnection__fullyQualifiedNamespace"]
	if ns == "" {
		ns = "devhost.servicebus.windows.net"
	}
	payload := ServiceBusPayload(h.queueFn.Name, h.queueFn.Trigger().Name, ns, *m, h.o.Now())
	err := h.invoke(ctx, h.queueFn.Name, payload)
	if err == nil {
		h.done()
		return
	}
	if ctx.Err() != nil {
		h.done()
		return
	}
	if m.DeliveryCount >= h.o.MaxDeliveryCount {
		h.deadLetter(m, "MaxDeliveryCountExceeded: "+err.Error())
		return
	}
	h.log.Info("redelivering", "messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	time.AfterFunc(h.o.RedeliveryDelay, func() {
		h.mu.Lock()
		if h.stopped {
			h.inflight--
			h.idle.Broadcast()
			h.mu.Unlock()
			return
		}
		h.queue = append(h.queue, m)
		h.mu.Unlock()
		h.signal()
	})
}

func (h *Host) deadLetter(m *Message, reason string) {
	h.log.Warn("dead-lettered", "messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	h.mu.Lock()
	h.dead = append(h.dead, DeadLetter{Message: *m, Body: string(m.Body), Reason: reason, At: h.o.Now().UTC()})
	h.inflight--
	h.idle.Broadcast()
	h.mu.Unlock()
}

// ---- timers ----

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

// ---- Event Hubs ----

// DeliverAuditBatch invokes the eventHubTrigger function with one batch,
// retrying under the function's retry policy (waits capped by MaxRetryDelay).
// It returns the last error when every attempt failed: the real host then
// moves past the batch.
func (h *Host) DeliverAuditBatch(ctx context.Context, events []string) error {
	f := h.auditFn
	if f == nil {
		return errors.New("devhost: no eventHubTrigger function")
	}
	h.mu.Lock()
	first := h.ehSeq
	h.ehSeq += int64(len(events))
	h.mu.Unlock()
	maxRetry, withRetry := 0, f.Retry != nil
	if withRetry {
		maxRetry = f.Retry.MaxRetryCount
	}
	delay := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt <= maxRetry; attempt++ {
		payload := EventHubPayload(f.Name, f.Trigger().Name, "devhost.servicebus.windows.net", f.Trigger().EventHubName,
			events, first, attempt, maxRetry, withRetry, h.o.Now())
		if err = h.invoke(ctx, f.Name, payload); err == nil {
			return nil
		}
		if attempt == maxRetry {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(delay, h.o.MaxRetryDelay)):
		}
		delay *= 2
	}
	h.log.Warn("audit batch abandoned after retries", "events", len(events))
	return err
}

// ---- front: /_devhost and forwarded HTTP functions ----

// MaxMessageBytes is the Service Bus standard tier's message size.
const MaxMessageBytes = 256 << 10

func (h *Host) frontHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_devhost/queues/{queue}/messages", func(w http.ResponseWriter, r *http.Request) {
		if q := r.PathValue("queue"); h.queueFn == nil || q != h.QueueName() {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no function listens on queue " + fmt.Sprintf("%q", q)})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxMessageBytes))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "message over 256 KiB"})
			return
		}
		if at := r.Header.Get("ScheduledEnqueueTimeUtc"); at != "" {
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ScheduledEnqueueTimeUtc must be RFC 3339"})
				return
			}
			writeJSON(w, http.StatusCreated, map[string]any{"sequenceNumber": h.Schedule(body, t)})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"messageId": h.Enqueue(body)})
	})
	mux.HandleFunc("GET /_devhost/deadletter", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"items": h.DeadLetters()})
	})
	mux.HandleFunc("POST /_devhost/timers/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := h.FireTimer(r.Context(), r.PathValue("name")); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "fired"})
	})
	mux.HandleFunc("POST /_devhost/eventhubs/{hub}/events", func(w http.ResponseWriter, r *http.Request) {
		if h.auditFn == nil || r.PathValue("hub") != h.auditFn.Trigger().EventHubName {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no function listens on this event hub"})
			return
		}
		var events []string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&events); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON array of strings"})
			return
		}
		if err := h.DeliverAuditBatch(r.Context(), events); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "delivered"})
	})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(h.handler)
			pr.Out.URL.Path = pr.In.URL.Path
			pr.Out.URL.RawPath = pr.In.URL.RawPath
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
			pr.Out.Header.Set("X-Azure-Functions-HostVersion", "devhost")
			h.signIn(pr.In, pr.Out.Header)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the handler does not answer"})
		},
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f := h.matchHTTP(r)
		if f == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if !h.authorized(*f, r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	return mux
}

// matchHTTP finds the HTTP function whose route and methods match r.
func (h *Host) matchHTTP(r *http.Request) *Function {
	path := r.URL.Path
	prefix := "/"
	if h.routePrefix != "" {
		prefix = "/" + h.routePrefix + "/"
	}
	if !strings.HasPrefix(path, prefix) {
		return nil
	}
	rest := strings.Trim(strings.TrimPrefix(path, prefix), "/")
	for i := range h.fns {
		f := &h.fns[i]
		t := f.Trigger()
		if !strings.EqualFold(t.Type, "httpTrigger") {
			continue
		}
		route := t.Route
		if route == "" {
			route = f.Name
		}
		if !routeMatches(route, rest) {
			continue
		}
		if len(t.Methods) == 0 {
			return f
		}
		for _, m := range t.Methods {
			if strings.EqualFold(m, r.Method) {
				return f
			}
		}
	}
	return nil
}

// routeMatches matches an ASP.NET-style route template (literals, {x},
// {x?}, {x:constraint}) against a path without prefix.
func routeMatches(template, path string) bool {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	var ps []string
	if path != "" {
		ps = strings.Split(path, "/")
	}
	for i, seg := range ts {
		param := strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
		optional := param && strings.HasSuffix(seg, "?}")
		if i >= len(ps) {
			return optional && i == len(ts)-1
		}
		if !param && !strings.EqualFold(seg, ps[i]) {
			return false
		}
		if param && ps[i] == "" {
			return false
		}
	}
	return len(ps) == len(ts)
}

func (h *Host) authorized(f Function, r *http.Request) bool {
	level := strings.ToLower(f.Trigger().AuthLevel)
	if level == "anonymous" || h.o.FunctionKey == "" {
		return true
	}
	key := r.URL.Query().Get("code")
	if key == "" {
		key = r.Header.Get("X-Functions-Key")
	}
	return key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(h.o.FunctionKey)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(marshal(v))
}
