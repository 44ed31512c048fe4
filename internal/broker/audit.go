package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/audit"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// HandleAuditEvents handles one Event Hubs batch of Entra audit events
// (EntraAuditEvents; docs/design.md, The contract and Semantics). Every event is decoded and every record
// classified; noise (other activities, other groups, unreadable records) is
// counted and logged, never blocking the good records. Each applied record's
// id is remembered on the request it affected, so a redelivered batch changes
// nothing. It returns a transient error (the batch is retried) when Graph or
// the store failed transiently for some record; permanent failures are
// logged and the batch is acknowledged.
func (b *Broker) HandleAuditEvents(ctx context.Context, events [][]byte) error {
	self, err := b.self(ctx)
	if err != nil {
		return err
	}
	isTarget := func(g string) bool { return len(b.profiles.ForGroup(g)) > 0 }
	deployedAt, err := b.deployedAt(ctx)
	if err != nil {
		return err
	}
	var records, noise, problems, applied, own, before int
	var errs []error
	var findings []audit.Finding
	for i, ev := range events {
		recs, probs := audit.Decode(ev)
		for _, p := range probs {
			problems++
			b.log.InfoContext(ctx, "audit event problem", "event", i, "problem", p.String())
		}
		for _, rec := range recs {
			records++
			f := audit.Classify(rec, audit.Self{AppID: self.AppID, ObjectID: self.ObjectID}, isTarget)
			if f.Kind == audit.Ignore {
				if f.Problem != "" {
					problems++
					b.log.InfoContext(ctx, "audit record about a target group not usable", "recordId", safeID(f.RecordID), "problem", f.Problem)
				} else {
					noise++
				}
				continue
			}
			if f.Initiator == audit.BySelf {
				own++
				continue
			}
			if !f.At.IsZero() && f.At.Before(deployedAt) {
				// A first deployment reads the hub from the start of its
				// retention: records older than the deployment are history,
				// not news (docs/design.md, real directory rule 3).
				before++
				continue
			}
			findings = append(findings, f)
		}
	}
	// PIM's own activation records first: they carry the PIM request id the
	// observed grant is named after, and the MS-PIM directory change of the
	// same activation (usually in the same batch) then attaches to it.
	slices.SortStableFunc(findings, func(a, c audit.Finding) int {
		return cmpBool(a.Kind != audit.PIMActivated, c.Kind != audit.PIMActivated)
	})
	for _, f := range findings {
		profiles := b.profiles.ForGroup(f.GroupID)
		if len(profiles) == 0 {
			noise++
			continue
		}
		if err := b.applyFinding(ctx, f, profiles); err != nil {
			if fault.Transient(err) || errors.Is(err, ErrTooManyConflicts) || ctx.Err() != nil {
				errs = append(errs, err)
			}
			b.log.WarnContext(ctx, "audit record not applied", "recordId", safeID(f.RecordID), "kind", string(f.Kind), "error", err.Error())
			continue
		}
		applied++
	}
	b.log.InfoContext(ctx, "audit batch done", "events", len(events), "records", records, "noise", noise,
		"problems", problems, "own", own, "beforeDeployment", before, "applied", applied, "failed", len(errs))
	if len(errs) > 0 {
		return fault.Wrap(fault.ErrTransient, "audit batch", errors.Join(errs...))
	}
	return nil
}

// self returns jitaccess's own identity: Options.Self, else looked up once
// through Options.SelfLookup.
func (b *Broker) self(ctx context.Context) (Self, error) {
	b.selfMu.Lock()
	defer b.selfMu.Unlock()
	if b.selfKnown {
		return b.selfID, nil
	}
	s := b.opts.Self
	if s.ObjectID == "" && b.opts.SelfLookup != nil {
		got, err := b.opts.SelfLookup(ctx)
		switch {
		case err == nil:
			if s.AppID == "" {
				s.AppID = got.AppID
			}
			s.ObjectID = got.ObjectID
		case s.AppID == "":
			return Self{}, fault.Wrap(fault.ErrTransient, "own identity", err)
		default:
			b.log.WarnContext(ctx, "own object id not readable; recognising own changes by client id only", "error", err.Error())
		}
	}
	s.AppID, s.ObjectID = strings.ToLower(s.AppID), strings.ToLower(s.ObjectID)
	b.selfID, b.selfKnown = s, true
	return s, nil
}

// deployedAt is when this deployment first ran (Options.Deployment); audit
// records older than it are not acted on. Zero when not configured.
func (b *Broker) deployedAt(ctx context.Context) (time.Time, error) {
	if b.opts.Deployment == nil {
		return time.Time{}, nil
	}
	b.selfMu.Lock()
	defer b.selfMu.Unlock()
	if !b.deployed.IsZero() {
		return b.deployed, nil
	}
	t, err := b.opts.Deployment.DeployedAt(ctx, b.now())
	if err != nil {
		return time.Time{}, fault.Wrap(fault.ErrTransient, "deployment start", err)
	}
	b.deployed = t
	return t, nil
}

func (b *Broker) applyFinding(ctx context.Context, f audit.Finding, profiles []access.Profile) error {
	switch {
	case f.Kind == audit.PIMActivated, f.Kind == audit.MemberAdded && f.Initiator == audit.ByPIM:
		return b.observePIM(ctx, f, profiles[0])
	case f.Kind == audit.PIMEnded:
		return b.pimEnded(ctx, f)
	case f.Kind == audit.MemberRemoved && f.Initiator == audit.ByPIM:
		return b.pimRemovedMember(ctx, f)
	case f.Kind == audit.MemberAdded:
		return b.outOfBand(ctx, f, profiles[0])
	case f.Kind == audit.MemberRemoved:
		return b.removedByOther(ctx, f)
	}
	return nil
}

// recordKey is the dedupe key of an audit record: its id, else a hash of
// what identifies it.
func recordKey(f audit.Finding) string {
	if f.RecordID != "" && len(f.RecordID) <= 64 {
		return "audit:" + strings.ToLower(f.RecordID)
	}
	return "audit:" + hashOf(f.RecordID, f.Activity, f.At.UTC().Format(time.RFC3339Nano), f.GroupID, f.UserID)
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s|", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// safeID keeps ids loggable (GUID-ish, bounded).
func safeID(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
