// Command jitaccess is the Azure Functions custom handler of jitaccess and its
// command-line companion. main.go only wires: settings → adapters → handlers
// → http.Server.
//
//	jitaccess                 serve the Functions host (FUNCTIONS_CUSTOMHANDLER_PORT)
//	jitaccess sandbox         the local sandbox of 'make run'
//	jitaccess send ...        send a request event (see 'jitaccess send --help')
//	jitaccess get <id>        read one request from the API
//	jitaccess list ...        list requests from the API
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/arm"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/cli"
	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/dashboard"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `jitaccess — just-in-time, approval-gated membership of privileged Entra groups

usage:
  jitaccess                 run as the Azure Functions custom handler (the host starts it)
  jitaccess sandbox [flags] run the local sandbox ('make run'); --help for flags
  jitaccess send <type> ... send a request event (--wait: wait for its outcome); 'jitaccess send --help'
  jitaccess get <id> ...    show one request (table; -o json); 'jitaccess get --help'
  jitaccess list ...        list requests (table; -o json); 'jitaccess list --help'
  jitaccess version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "serve":
		return serve(ctx)
	case "sandbox":
		return sandbox(ctx, args)
	case "send":
		return cli.Send(ctx, args, cli.Env{})
	case "get":
		return cli.Get(ctx, args, cli.Env{})
	case "list":
		return cli.List(ctx, args, cli.Env{})
	case "version", "--version":
		fmt.Println(version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "jitaccess: unknown command %q\n\n%s", cmd, usage)
	return cli.ExitUsage
}

// newLogger logs JSON to stdout (the host records stderr as errors); lines
// logged within an invocation carry its ids and go back in its answer's Logs
// (internal/telemetry).
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(telemetry.NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// startFailure reports a start that cannot go on: on stdout as JSON for the
// log pipeline, and on stderr for a person and for the host's error log.
func startFailure(log *slog.Logger, err error) int {
	log.Error("start failed", "error", err.Error())
	fmt.Fprintf(os.Stderr, "jitaccess: cannot start: %v\n", err)
	return 1
}

func serve(ctx context.Context) int {
	log := newLogger(os.Stdout, "info")
	s, err := config.Load(os.Getenv)
	if err != nil {
		return startFailure(log, err)
	}
	log = newLogger(os.Stdout, s.LogLevel)
	readAuth, err := handlers.ReadAuthFromEnv(os.Getenv)
	if err != nil {
		return startFailure(log, err) // names JIT_READ_ROLE
	}
	profiles, err := policy.LoadFile(s.ProfilesFile)
	if err != nil {
		return startFailure(log, err)
	}
	cred, err := credential(s)
	if err != nil {
		return startFailure(log, err)
	}
	store, err := openTableStore(s, cred, log)
	if err != nil {
		return startFailure(log, err)
	}
	ensureCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	if err := store.EnsureTables(ensureCtx); err != nil {
		// Keep serving: /api/health says 503 and invocations fail as
		// transient (so messages come back) until storage answers.
		log.Warn("tables not ready", "error", err.Error())
	} else if at, err := store.DeployedAt(ensureCtx, time.Now().UTC()); err != nil {
		// Recorded by the first audit batch instead.
		log.Warn("deployment start not recorded", "error", err.Error())
	} else {
		// Audit records older than this are history, not news (DESIGN §6b.3).
		log.Info("deployment", "firstStarted", at.Format(time.RFC3339))
	}
	cancel()
	// Graph and ARM calls are counted per invocation (telemetry.Transport).
	dir, err := graph.New(cred, graph.Options{BaseURL: s.GraphBaseURL, Scope: s.GraphScope,
		HTTPClient: &http.Client{Transport: telemetry.Transport(telemetry.ServiceGraph, nil)}})
	if err != nil {
		return startFailure(log, err)
	}
	rbac, err := arm.New(cred, arm.Options{BaseURL: s.ARMBaseURL, Scope: s.ARMScope,
		HTTPClient: &http.Client{Transport: telemetry.Transport(telemetry.ServiceARM, nil)}})
	if err != nil {
		return startFailure(log, err)
	}
	opts := broker.Options{Logger: log, ApproverCacheTTL: s.ApproverCacheTTL, ReplicationWindow: s.ReplicationWindow, Deployment: store,
		ARM: rbac, AssignmentNamespace: s.TablePrefix, TokenLifetime: s.TokenLifetime, RBACPropagation: s.RBACPropagation}
	if s.ApproverCacheTTL == 0 {
		opts.ApproverCacheTTL = -1 // off
	}
	withAudit(&opts, dir, s.ClientID, s.ReconcileMaxGraphCalls)
	closeBus, err := withServiceBus(s, cred, &opts)
	if err != nil {
		return startFailure(log, err)
	}
	defer closeBus()
	b := broker.New(store, dir, profiles, broker.SystemClock{}, opts)
	deps := handlerDeps(b, store, dir, profiles, log, s)
	deps.ReadAuth = &readAuth
	h := handlers.New(deps)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	log.Info("jitaccess listening", "addr", addr, "version", version, "profiles", len(profiles.All()))
	if err := handlers.Serve(ctx, addr, h); err != nil {
		return startFailure(log, err)
	}
	return 0
}

// handlerDeps wires the use cases to the handlers.
func handlerDeps(b *broker.Broker, store broker.Lister, dir broker.Directory, profiles *policy.Set, log *slog.Logger, s config.Settings) handlers.Deps {
	return handlers.Deps{
		Events:             b,
		Sweeper:            b,
		Audit:              b,
		Dashboard:          dashboard.New(dashboard.Options{Store: store, Profiles: profiles.All(), Logger: log, SweepInterval: config.SweepInterval(s.SweepSchedule, time.Now()), Users: dir}),
		Store:              store,
		Gauges:             telemetry.StoreGauges{Store: store, SweepInterval: config.SweepInterval(s.SweepSchedule, time.Now())},
		Users:              dir,
		Logger:             log,
		ContinuationKey:    []byte(s.ContinuationKey),
		RedeliveryPatience: s.RedeliveryPatience,
	}
}

// credential is the app's Entra identity: the managed identity in Azure
// (AZURE_CLIENT_ID selects a user-assigned one); elsewhere azidentity's
// default chain (environment, workload identity, Azure CLI for developers).
func credential(s config.Settings) (azcore.TokenCredential, error) {
	if os.Getenv("IDENTITY_ENDPOINT") != "" || os.Getenv("MSI_ENDPOINT") != "" {
		return graph.NewManagedIdentityCredential(s.ClientID)
	}
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		return nil, fmt.Errorf("no Azure credential (not in Azure, and azidentity's default chain failed): %w", err)
	}
	return cred, nil
}

// withAudit gives the broker what audit handling, PIM mode and drift
// reconciliation need: the Graph client as PIM and members ports, and
// jitaccess's own identity (the configured client id; the object id, and
// the client id when none is configured, read once from its Graph token).
func withAudit(opts *broker.Options, dir *graph.Client, clientID string, reconcileBudget int) {
	opts.PIM = dir
	opts.Members = dir
	opts.Self = broker.Self{AppID: strings.ToLower(clientID)}
	opts.SelfLookup = func(ctx context.Context) (broker.Self, error) {
		s, err := dir.Self(ctx)
		return broker.Self{AppID: s.AppID, ObjectID: s.ObjectID}, err
	}
	opts.ReconcileMaxGraphCalls = reconcileBudget
	if reconcileBudget == 0 {
		opts.ReconcileMaxGraphCalls = -1 // off
	}
}
