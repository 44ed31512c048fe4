package main

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

const sandboxUsage = `usage: jitaccess sandbox [flags]

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

func sandbox(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("jitaccess sandbox", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:7071", "")
	profilesFile := fs.String("profiles", "", "")
	appDir := fs.String("app", ".", "")
	sweep := fs.String("sweep", "*/5 * * * * *", "")
	quiet := fs.Bool("quiet", false, "")
	help := fs.Bool("help", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "jitaccess sandbox: bad arguments (%v)\n\n%s", err, sandboxUsage)
		return 2
	}
	if *help {
		fmt.Print(sandboxUsage)
		return 0
	}
	level := "info"
	if *quiet {
		level = "warn"
	}
	log := newLogger(os.Stdout, level)
	if *profilesFile == "" {
		*profilesFile = filepath.Join(*appDir, "profiles.json")
		if _, err := os.Stat(*profilesFile); err != nil {
			*profilesFile = filepath.Join(*appDir, "profiles.sample.json")
		}
	}
	if _, err := config.ParseSchedule(*sweep); err != nil {
		return startFailure(log, fmt.Errorf("--sweep: %w", err))
	}
	profiles, err := policy.LoadFile(*profilesFile)
	if err != nil {
		return startFailure(log, err)
	}
	sb, err := startSandbox(ctx, sandboxConfig{
		Addr: *addr, AppDir: *appDir, Sweep: *sweep, Profiles: profiles, Log: log,
	})
	if err != nil {
		return startFailure(log, err)
	}
	fmt.Fprintf(os.Stderr, `
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

type sandboxConfig struct {
	Addr, AppDir, Sweep string
	Profiles            *policy.Set
	Log                 *slog.Logger
}

type runningSandbox struct {
	host     *devhost.Host
	graph    *graphsim.Sim
	graphURL string
	ids      *idsim.Server
	store    *memstore.Store
	stop     func()
}

// startSandbox starts every piece of the sandbox on loopback ports.
func startSandbox(ctx context.Context, c sandboxConfig) (*runningSandbox, error) {
	ctx, cancel := context.WithCancel(ctx)
	fail := func(err error) (*runningSandbox, error) { cancel(); return nil, err }

	// The managed identity: the real azidentity chain against a local endpoint.
	ids := idsim.New(idsim.Options{})
	ids.Start()
	os.Setenv("IDENTITY_ENDPOINT", ids.Endpoint())
	os.Setenv("IDENTITY_HEADER", ids.Header())
	os.Unsetenv("MSI_ENDPOINT")

	// The simulated tenant, requiring tokens from that identity.
	// It is served through a logger so the sandbox log shows every Graph call.
	sim := graphsim.New(graphsim.Options{Verify: ids.Verify}).SeedTenant()
	// Like Entra, the simulated tenant's reads lag its writes by a few
	// seconds, replica by replica (DESIGN §6b).
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

	cred, err := graph.NewManagedIdentityCredential("")
	if err != nil {
		return fail(err)
	}
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
	// acted on (DESIGN §6b.3).
	if _, err := store.DeployedAt(ctx, time.Now().UTC()); err != nil {
		return fail(err)
	}
	// Scheduled expiry through the host stand-in's queue, and notifications
	// to the log, so the sandbox behaves like a deployment with Service Bus.
	var host *devhost.Host
	opts := broker.Options{
		Logger:       c.Log,
		Scheduler:    devhostScheduler{host: func() *devhost.Host { return host }},
		Publisher:    logPublisher{log: c.Log},
		ExpiringLead: 10 * time.Second,
		// A short window (the simulated lag is 2 s) so that the walk-through
		// shows checks decided within a sweep or two.
		ReplicationWindow:   sandboxReplicationWindow,
		Deployment:          store,
		ARM:                 rbac,
		AssignmentNamespace: "sandbox",
	}
	withAudit(&opts, dir, "", config.DefaultReconcileMaxGraphCalls)
	b := broker.New(store, dir, c.Profiles, broker.SystemClock{}, opts)
	deps := handlerDeps(b, store, dir, c.Profiles, c.Log, config.Settings{RedeliveryPatience: config.DefaultRedeliveryPatience, SweepSchedule: c.Sweep})
	// The host stand-in plays App Service Authentication (devhost
	// SignInOperator): it drops client-supplied principal headers and signs
	// loopback callers in as the local operator with the read role.
	deps.ReadAuth = &handlers.ReadAuth{Role: handlers.DefaultReadRole, PlatformSignIn: true}
	h := handlers.New(deps)

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
	return &runningSandbox{host: host, graph: sim, graphURL: graphURL, ids: ids, store: store, stop: func() {
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
