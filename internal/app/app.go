// Package app wires jitaccess as deployed: settings → credential → table
// store → Graph and ARM clients → Service Bus → broker → handlers → server.
// Serve is the whole production start; Handler is the part the sandbox
// (internal/sandbox, built with -tags sandbox) reuses over its simulated
// adapters. Each component gets its own settings, mapped from
// config.Settings in Serve and nowhere else.
package app

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/arm"
	"github.com/jitaccess/jitaccess/internal/config"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// Env is the process around the app.
type Env struct {
	// Getenv reads the app settings (os.Getenv).
	Getenv func(string) string
	// Stdout receives the JSON log; Stderr a start failure, for a person
	// and for the host's error log.
	Stdout, Stderr io.Writer
	// Version is logged at start.
	Version string
}

// Serve runs the Functions custom handler until ctx is done. It returns the
// process's exit code: 1 when the start cannot go on.
func Serve(ctx context.Context, env Env) int {
	log := NewLogger(env.Stdout, "info")
	fail := func(err error) int { return StartFailure(log, env.Stderr, err) }
	s, err := config.Load(env.Getenv)
	if err != nil {
		return fail(err)
	}
	log = NewLogger(env.Stdout, s.LogLevel)
	fail = func(err error) int { return StartFailure(log, env.Stderr, err) }
	readAuth, err := handlers.ReadAuthFromEnv(env.Getenv)
	if err != nil {
		return fail(err) // names JIT_READ_ROLE
	}
	profiles, err := policy.LoadFile(s.ProfilesFile)
	if err != nil {
		return fail(err)
	}
	cred, err := credential(env.Getenv, s.ClientID)
	if err != nil {
		return fail(err)
	}
	store, err := openTableStore(tableSettings{ConnString: s.TablesConnString, Endpoint: s.TablesEndpoint, Prefix: s.TablePrefix}, cred, log)
	if err != nil {
		return fail(err)
	}
	prepareTables(ctx, store, log)
	// Graph and ARM calls are counted per invocation (telemetry.Transport).
	dir, err := graph.New(cred, graph.Options{BaseURL: s.GraphBaseURL, Scope: s.GraphScope,
		HTTPClient: &http.Client{Transport: telemetry.Transport(telemetry.ServiceGraph, nil)}})
	if err != nil {
		return fail(err)
	}
	rbac, err := arm.New(cred, arm.Options{BaseURL: s.ARMBaseURL, Scope: s.ARMScope,
		HTTPClient: &http.Client{Transport: telemetry.Transport(telemetry.ServiceARM, nil)}})
	if err != nil {
		return fail(err)
	}
	bus, err := openServiceBus(serviceBusSettings{Namespace: s.ServiceBusNS, Queue: s.RequestsQueue, Topic: s.NotificationsTopic}, cred)
	if err != nil {
		return fail(err)
	}
	defer bus.close()
	h := Handler(Adapters{Store: store, Graph: dir, ARM: rbac, Scheduler: bus.scheduler, Publisher: bus.publisher}, profiles,
		BrokerSettings{
			ClientID:               s.ClientID,
			AssignmentNamespace:    s.TablePrefix,
			ApproverCacheTTL:       s.ApproverCacheTTL,
			ReplicationWindow:      s.ReplicationWindow,
			TokenLifetime:          s.TokenLifetime,
			RBACPropagation:        s.RBACPropagation,
			ReconcileMaxGraphCalls: s.ReconcileMaxGraphCalls,
			ExpiringLead:           s.ExpiringLead,
		},
		HandlerSettings{
			ReadAuth:           readAuth,
			ContinuationKey:    []byte(s.ContinuationKey),
			RedeliveryPatience: s.RedeliveryPatience,
			SweepInterval:      config.SweepInterval(s.SweepSchedule, time.Now()),
		}, log)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	log.Info("jitaccess listening", "addr", addr, "version", env.Version, "profiles", len(profiles.All()))
	if err := handlers.Serve(ctx, addr, h); err != nil {
		return fail(err)
	}
	return 0
}
