// Package sandbox is 'jitaccess sandbox', the local sandbox of 'make run':
// jitaccess in one process over simulated adapters — an in-memory store,
// the Graph and role-assignment simulators seeded with the scenario's
// tenant, a managed-identity token endpoint and the Functions host
// stand-in — wired by internal/app like the deployment. It is linked only
// into builds with -tags sandbox (the root package's sandbox_cmd.go): the
// deployed binary carries no simulator.
package sandbox

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/app"
	"github.com/jitaccess/jitaccess/internal/arm"
	"github.com/jitaccess/jitaccess/internal/armsim"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/devhost"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/graphsim"
	"github.com/jitaccess/jitaccess/internal/idsim"
	"github.com/jitaccess/jitaccess/internal/memstore"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/seed"
)

const usage = `usage: jitaccess sandbox [flags]

Runs jitaccess locally in one process: the handler, an in-memory store, the
Graph simulator seeded with the scenario's tenant (n01, p01, aks-default,
aks-admin, aks-approvers, ...), a local managed-identity token endpoint and
the Functions host stand-in, which reads functions/*/function.json, delivers
queued events and fires the sweep timer.

  --addr ADDR        the host stand-in's address (default 127.0.0.1:7071)
  --profiles FILE    profiles (default ./profiles.json if present, else ./profiles.sample.json)
  --app DIR          the function app folder with host.json and functions/ (default .)
  --sweep CRON       sweep schedule, six fields (default "*/5 * * * * *": every 5 s)
  --quiet            log warnings only
`

// Run runs the sandbox with the command line's flags (args) until ctx is
// done. It returns the process's exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jitaccess sandbox", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:7071", "")
	profilesFile := fs.String("profiles", "", "")
	appDir := fs.String("app", ".", "")
	sweep := fs.String("sweep", "*/5 * * * * *", "")
	quiet := fs.Bool("quiet", false, "")
	help := fs.Bool("help", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitaccess sandbox: bad arguments (%v)\n\n%s", err, usage)
		return 2
	}
	if *help {
		fmt.Fprint(stdout, usage)
		return 0
	}
	level := "info"
	if *quiet {
		level = "warn"
	}
	log := app.NewLogger(stdout, level)
	if *profilesFile == "" {
		*profilesFile = filepath.Join(*appDir, "profiles.json")
		if _, err := os.Stat(*profilesFile); err != nil {
			*profilesFile = filepath.Join(*appDir, "profiles.sample.json")
		}
	}
	if _, err := config.ParseSchedule(*sweep); err != nil {
		return app.StartFailure(log, stderr, fmt.Errorf("--sweep: %w", err))
	}
	profiles, err := policy.LoadFile(*profilesFile)
	if err != nil {
		return app.StartFailure(log, stderr, err)
	}
	sb, err := start(ctx, options{
		Addr: *addr, AppDir: *appDir, Sweep: *sweep, Profiles: profiles, Log: log,
	})
	if err != nil {
		return app.StartFailure(log, stderr, err)
	}
	fmt.Fprintf(stderr, `
jitaccess sandbox is running at %[1]s  (Ctrl-C to stop)
  profiles: %[2]s    Graph simulator: %[3]s    sweep: %[4]s

  In another terminal (go build -o jitaccess . first):
    ./jitaccess send requested --request-id demo-1 --requester n01@contoso.com --profile aks-admin --duration PT1M --justification "walk-through"
    ./jitaccess send approved  --request-id demo-1 --approver p01@contoso.com
    ./jitaccess get demo-1
    curl -s %[1]s/api/health

`, sb.host.URL(), *profilesFile, sb.graphURL, *sweep)
	<-ctx.Done()
	sb.stop()
	return 0
}

// The sandbox's simulated directory lags like Entra; its replication
// window is short so that audit checks are decided within a sweep or two.
const (
	sandboxReplicaLag        = 2 * time.Second
	sandboxReplicationWindow = 5 * time.Second
)

// options are what the sandbox is started with.
type options struct {
	Addr, AppDir, Sweep string
	Profiles            *policy.Set
	Log                 *slog.Logger
}

// running is a started sandbox.
type running struct {
	host     *devhost.Host
	graph    *graphsim.Sim
	graphURL string
	ids      *idsim.Server
	store    *memstore.Store
	stop     func()
}

// start starts every piece of the sandbox on loopback ports.
func start(ctx context.Context, c options) (*running, error) {
	ctx, cancel := context.WithCancel(ctx)
	fail := func(err error) (*running, error) { cancel(); return nil, err }

	// The managed identity: a local token endpoint, asked with the App
	// Service protocol like in Azure Functions (the process environment is
	// left alone: the credential is given the endpoint).
	ids := idsim.New(idsim.Options{})
	ids.Start()
	cred := newIdentityCredential(ids.Endpoint(), ids.Header())

	// The simulated tenant, requiring tokens from that identity.
	// It is served through a logger so the sandbox log shows every Graph call.
	sim := graphsim.New(graphsim.Options{Verify: ids.Verify}).SeedTenant()
	// Like Entra, the simulated tenant's reads lag its writes by a few
	// seconds, replica by replica (docs/design.md, The real directory).
	sim.SetReplicaLag(sandboxReplicaLag, time.Now().UnixNano())
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	graphURL := "http://" + gln.Addr().String() + graphsim.BasePath
	graphSrv := &http.Server{Handler: logCalls(c.Log, "graph call (simulated tenant)", sim.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = graphSrv.Serve(gln) }()

	// The simulated AKS cluster's role assignments (azure-role profiles),
	// lagging like ARM; its calls logged like Graph's.
	rsim := armsim.New(armsim.Options{Verify: ids.Verify}).AddScope(seed.AKSCluster).
		AddRoleDefinition(seed.RoleAKSRBACClusterAdmin, seed.RoleAKSRBACReader)
	rsim.SetReplicaLag(sandboxReplicaLag, time.Now().UnixNano())
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	armURL := "http://" + aln.Addr().String()
	armSrv := &http.Server{Handler: logCalls(c.Log, "arm call (simulated cluster)", rsim.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = armSrv.Serve(aln) }()

	dir, err := graph.New(cred, graph.Options{BaseURL: graphURL})
	if err != nil {
		return fail(err)
	}
	rbac, err := arm.New(cred, arm.Options{BaseURL: armURL})
	if err != nil {
		return fail(err)
	}
	store := memstore.New(memstore.WithLogger(c.Log))
	// This deployment starts now: audit records older than this are not
	// acted on (docs/design.md, real directory rule 3).
	if _, err := store.DeployedAt(ctx, time.Now().UTC()); err != nil {
		return fail(err)
	}
	// Scheduled expiry through the host stand-in's queue, and notifications
	// to the log, so the sandbox behaves like a deployment with Service Bus.
	var host *devhost.Host
	h := app.Handler(app.Adapters{
		Store:     store,
		Graph:     dir,
		ARM:       rbac,
		Scheduler: devhostScheduler{host: func() *devhost.Host { return host }},
		Publisher: logPublisher{log: c.Log},
	}, c.Profiles, app.BrokerSettings{
		AssignmentNamespace: "sandbox",
		ApproverCacheTTL:    broker.DefaultApproverCacheTTL,
		// A short window (the simulated lag is 2 s) so that the walk-through
		// shows checks decided within a sweep or two.
		ReplicationWindow:      sandboxReplicationWindow,
		ReconcileMaxGraphCalls: config.DefaultReconcileMaxGraphCalls,
		ExpiringLead:           10 * time.Second,
	}, app.HandlerSettings{
		// The host stand-in plays App Service Authentication (devhost
		// SignInOperator): it drops client-supplied principal headers and
		// signs loopback callers in as the local operator with the read role.
		ReadAuth:           handlers.ReadAuth{Role: handlers.DefaultReadRole, PlatformSignIn: true},
		RedeliveryPatience: config.DefaultRedeliveryPatience,
		SweepInterval:      config.SweepInterval(c.Sweep, time.Now()),
	}, c.Log)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	go func() { _ = handlers.ServeListener(ctx, ln, h) }()
	host, err = devhost.New(devhost.Options{
		Dir:        c.AppDir,
		Settings:   map[string]string{"JIT_SWEEP_SCHEDULE": c.Sweep},
		HandlerURL: "http://" + ln.Addr().String(),
		Addr:       c.Addr,
		Logger:     c.Log,
		Client:     &http.Client{Timeout: 2 * time.Minute},
		// As the deployment's queue (infra/modules/servicebus.bicep).
		DuplicateDetectionWindow: time.Hour,
		SignIn:                   devhost.SignInOperator,
	})
	if err != nil {
		return fail(err)
	}
	if err := host.Start(ctx); err != nil {
		return fail(err)
	}
	return &running{host: host, graph: sim, graphURL: graphURL, ids: ids, store: store, stop: func() {
		cancel()
		host.Wait()
		_ = graphSrv.Close()
		_ = armSrv.Close()
		ids.Close()
	}}, nil
}

// logCalls logs each call a simulator receives (method, path, status): the
// walk-through shows revokeSignInSessions and the role assignment's
// deletion happening. Never bodies.
func logCalls(log *slog.Logger, msg string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		log.Info(msg, "method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
