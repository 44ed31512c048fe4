package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/handlers"
	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/dashboard"
	"github.com/jitaccess/jitaccess/internal/graph"
	"github.com/jitaccess/jitaccess/internal/policy"
	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// Store is what the app needs of a store: the broker's port, the read side
// of the API and the dashboard, and the deployment's first start.
// tablestore.Store implements it (memstore.Store in the sandbox).
type Store interface {
	broker.Store
	broker.Lister
	broker.Deployment
}

// Adapters are the outside world the use cases run on.
type Adapters struct {
	Store Store
	// Graph is the directory, PIM and group members, and tells jitaccess's
	// own identity.
	Graph *graph.Client
	// ARM serves azure-role grants.
	ARM broker.RoleAssignments
	// Scheduler, when set, schedules each grant's expire message (Service
	// Bus); without it the sweep alone ends grants.
	Scheduler broker.ExpiryScheduler
	// Publisher, when set, publishes outcome notifications.
	Publisher broker.Publisher
}

// BrokerSettings are the use cases' settings.
type BrokerSettings struct {
	// ClientID is jitaccess's own application (client) id ("": read from
	// its Graph token): its own changes in audit records are not news.
	ClientID string
	// AssignmentNamespace qualifies the names of role assignments (the
	// table prefix).
	AssignmentNamespace string
	// ApproverCacheTTL is how long an approver's resolution is reused
	// (0: no cache).
	ApproverCacheTTL time.Duration
	// ReplicationWindow, TokenLifetime, RBACPropagation: 0 takes the
	// broker's default.
	ReplicationWindow, TokenLifetime, RBACPropagation time.Duration
	// ReconcileMaxGraphCalls bounds drift reconciliation's Graph calls per
	// sweep (0: no reconciliation).
	ReconcileMaxGraphCalls int
	// ExpiringLead is how long before a grant's end the "expiring" notice is
	// published (with Adapters.Publisher; 0: none).
	ExpiringLead time.Duration
}

// HandlerSettings are the handlers' settings.
type HandlerSettings struct {
	// ReadAuth is who may read the API and the dashboard.
	ReadAuth handlers.ReadAuth
	// ContinuationKey signs list continuation tokens (empty: a random key).
	ContinuationKey []byte
	// RedeliveryPatience: see handlers.Deps.
	RedeliveryPatience time.Duration
	// SweepInterval is the time between two sweeps (the dashboard and the
	// metrics tell an overdue end by it).
	SweepInterval time.Duration
}

// Handler wires the use cases to the handlers: the broker over the
// adapters, the dashboard and the sweep's metrics.
func Handler(a Adapters, profiles *policy.Set, bs BrokerSettings, hs HandlerSettings, log *slog.Logger) http.Handler {
	b := broker.New(a.Store, a.Graph, profiles, broker.SystemClock{}, brokerOptions(a, bs, log))
	readAuth := hs.ReadAuth
	return handlers.New(handlers.Deps{
		Events:  b,
		Sweeper: b,
		Audit:   b,
		Dashboard: dashboard.New(dashboard.Options{Store: a.Store, Profiles: profiles.All(), Logger: log,
			SweepInterval: hs.SweepInterval, Users: a.Graph}),
		Store:              a.Store,
		Gauges:             telemetry.StoreGauges{Store: a.Store, SweepInterval: hs.SweepInterval},
		Users:              a.Graph,
		Logger:             log,
		ReadAuth:           &readAuth,
		ContinuationKey:    hs.ContinuationKey,
		RedeliveryPatience: hs.RedeliveryPatience,
	})
}

// brokerOptions gives the broker its ports and settings. The Graph client
// serves PIM-mode grants and drift reconciliation's member lists, and tells
// jitaccess's own identity (the object id, and the client id when none is
// configured, read once from its Graph token).
func brokerOptions(a Adapters, s BrokerSettings, log *slog.Logger) broker.Options {
	opts := broker.Options{
		Logger:              log,
		Deployment:          a.Store,
		ARM:                 a.ARM,
		Scheduler:           a.Scheduler,
		Publisher:           a.Publisher,
		PIM:                 a.Graph,
		Members:             a.Graph,
		Self:                broker.Self{AppID: strings.ToLower(s.ClientID)},
		AssignmentNamespace: s.AssignmentNamespace,
		ApproverCacheTTL:    s.ApproverCacheTTL,
		ReplicationWindow:   s.ReplicationWindow,
		TokenLifetime:       s.TokenLifetime,
		RBACPropagation:     s.RBACPropagation,

		ReconcileMaxGraphCalls: s.ReconcileMaxGraphCalls,
		SelfLookup: func(ctx context.Context) (broker.Self, error) {
			self, err := a.Graph.Self(ctx)
			return broker.Self{AppID: self.AppID, ObjectID: self.ObjectID}, err
		},
	}
	if a.Publisher != nil {
		opts.ExpiringLead = s.ExpiringLead
	}
	if s.ApproverCacheTTL == 0 {
		opts.ApproverCacheTTL = -1 // off
	}
	if s.ReconcileMaxGraphCalls == 0 {
		opts.ReconcileMaxGraphCalls = -1 // off
	}
	return opts
}
