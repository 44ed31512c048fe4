// Package handlers is the HTTP server the Azure Functions host talks to (a
// custom handler). Non-HTTP functions arrive as POST /<FunctionName> with the
// host's invocation envelope {"Data":{...},"Metadata":{...}}; HTTP functions
// arrive forwarded as plain requests on /api/... (enableForwardingHttpRequest).
//
// Each function has its own file: it decodes the host payload, calls the use
// case through a small interface defined here (consumer side) and reports an
// outcome. respond.go is the one place that maps an error to the host's
// answer.
package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// delivery is what the host tells about one Service Bus delivery, read from
// the invocation's Metadata, never from the body. The handler logs it and
// gates its redelivery patience on deliveryCount.
type delivery struct {
	// messageID is the Service Bus message id (the CloudEvent id when sent by
	// jitaccess send).
	messageID string
	// deliveryCount is 1 for the first delivery. From the second on, a
	// transient failure is retried within the invocation
	// (Deps.RedeliveryPatience); the event itself is processed the same way.
	deliveryCount int
	// enqueuedTime is when Service Bus accepted the message (zero when the
	// host did not say). The host sends it with second precision.
	enqueuedTime time.Time
	// problem is set when the invocation could not be read at all (over the
	// size limit, unreadable request body): there is no body nor metadata,
	// and the delivery is recorded as rejected with this reason
	// (RejectDelivery).
	problem string
}

// EventProcessor handles AccessRequests deliveries (*broker.Broker implements
// it). Both methods return nil when the delivery is done with — applied,
// recorded as rejected or refused (invalid input and permanent failures are
// NOT errors at this level), or a duplicate — and an error wrapping
// fault.ErrTransient when the delivery must come back.
type EventProcessor interface {
	// HandleEvent processes one request event: the CloudEvent body of a
	// Service Bus message, possibly not a valid event at all.
	HandleEvent(ctx context.Context, body []byte) error
	// RejectDelivery records a delivery that could not be read at all
	// (there is no body, only a reason), under the message id.
	RejectDelivery(ctx context.Context, messageID, reason string) error
}

// Sweeper runs the expiry sweep (ends due grants, times out approvals,
// repairs half-done work). *broker.Broker implements it.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// AuditHandler handles one batch of Entra audit events (*broker.Broker
// implements it). Each event is the text of one Event Hubs event (usually
// {"records":[...]}); it may not be JSON at all. Return nil when the batch
// is done with (bad events recorded or skipped), a transient error to have
// the function's retry policy retry the batch.
type AuditHandler interface {
	HandleAuditEvents(ctx context.Context, events [][]byte) error
}

// GaugeReader reads the sweep's metrics (telemetry.StoreGauges).
type GaugeReader interface {
	Read(ctx context.Context, now time.Time) (telemetry.Gauges, error)
}

// Pinger checks a dependency for /api/health.
type Pinger interface {
	Ping(ctx context.Context) error
}

// UserResolver resolves a UPN to an object id for the requester filter of the
// list API (broker.Directory satisfies it).
type UserResolver interface {
	LookupUser(ctx context.Context, idOrUPN string) (broker.User, error)
}

// Deps are what the handlers use. Nil interfaces switch the feature off as
// documented on each field.
type Deps struct {
	// Events processes AccessRequests deliveries (required for that function:
	// without it every delivery fails with 500 so nothing is lost).
	Events EventProcessor
	// Sweeper runs ExpirySweep (without it the timer is acknowledged).
	Sweeper Sweeper
	// Audit handles EntraAuditEvents batches (without it batches are
	// acknowledged and only counted in the log).
	Audit AuditHandler
	// Store serves the read API and the storage health check.
	Store broker.Lister
	// Graph, when set, is checked by /api/health and reported (not required).
	Graph Pinger
	// Users, when set, lets the list API filter by requester UPN.
	Users UserResolver
	// Dashboard serves GET /api/dashboard; nil answers 501.
	Dashboard http.Handler
	// ReadAuth is who may read /api/requests and /api/dashboard (auth.go).
	// Nil: from the environment (JIT_READ_ROLE, WEBSITE_AUTH_ENABLED).
	ReadAuth *ReadAuth
	// ContinuationKey signs list continuation tokens (HMAC-SHA256). Empty:
	// a random key, so tokens are valid for the life of the process.
	ContinuationKey []byte
	// Logger receives JSON logs (default: JSON to stdout). It is wrapped in a
	// telemetry.Handler; the broker's logger should be the same, so that its
	// lines carry the invocation's ids and reach the answer's Logs.
	Logger *slog.Logger
	// Gauges, when set, is read after each sweep and logged as the metrics
	// line (telemetry.MsgMetrics) that the ends-overdue alert reads.
	Gauges GaugeReader
	// MaxInvocationBytes bounds an invocation request (default 1 MiB).
	MaxInvocationBytes int64
	// Now is the clock for the log's durations (default time.Now).
	Now func() time.Time
	// RedeliveryPatience: from the second delivery of a message on, a
	// transient failure of AccessRequests is retried within the invocation,
	// with backoff, for up to this long before the answer asks the host for
	// a redelivery (0: answer at once). Service Bus redelivers at once and
	// dead-letters after maxDeliveryCount; without patience an outage of
	// Table Storage or Graph longer than a few seconds would dead-letter
	// every event that arrives during it.
	RedeliveryPatience time.Duration
}

// DefaultMaxInvocationBytes bounds the host's invocation request.
const DefaultMaxInvocationBytes = 1 << 20

type server struct {
	d    Deps
	log  *slog.Logger
	key  []byte
	auth readAuth
}

// New builds the handler the host talks to.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	}
	// Lines logged within an invocation carry its ids and are collected for
	// the answer's Logs (a logger built by telemetry already does this).
	d.Logger = telemetry.Wrap(d.Logger)
	if d.MaxInvocationBytes <= 0 {
		d.MaxInvocationBytes = DefaultMaxInvocationBytes
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &server{d: d, log: d.Logger, key: d.ContinuationKey, auth: newReadAuth(d.ReadAuth, d.Logger)}
	if len(s.key) == 0 {
		s.key = make([]byte, 32)
		_, _ = rand.Read(s.key)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /AccessRequests", s.invocation("AccessRequests", s.accessRequests))
	mux.Handle("POST /ExpirySweep", s.invocation("ExpirySweep", s.expirySweep))
	mux.Handle("POST /EntraAuditEvents", s.invocation("EntraAuditEvents", s.entraAuditEvents))
	// Reads need a signed-in reader with the read role (auth.go); health
	// stays anonymous.
	mux.Handle("GET /api/requests", s.http("Requests", s.reader(answerJSON, s.listRequests)))
	mux.Handle("GET /api/requests/{$}", s.http("Requests", s.reader(answerJSON, s.listRequests)))
	mux.Handle("GET /api/requests/{id}", s.http("Requests", s.reader(answerJSON, s.getRequest)))
	mux.Handle("GET /api/health", s.http("Health", s.health))
	mux.Handle("GET /api/dashboard", s.http("Dashboard", s.reader(answerPage, s.dashboard)))
	// The host probes the root until any HTTP answer comes (worker ready).
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such function or route")
	})
	return mux
}

// Listen opens a loopback-or-given TCP listener. The handler is ready the
// moment this returns: there is no warm-up.
func Listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// Serve listens on addr and serves h until ctx is cancelled, then shuts down
// gracefully (in-flight invocations get up to 30 s).
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on ln until ctx is cancelled.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: the host's functionTimeout bounds invocations.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-errc
		return err
	}
}
