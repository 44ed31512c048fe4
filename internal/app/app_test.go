package app

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/config"
)

// A start that cannot go on names the setting, on stderr and in the JSON log.
func TestServeRefusesBadSettings(t *testing.T) {
	var out, errOut bytes.Buffer
	env := Env{Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errOut}
	if code := Serve(context.Background(), env); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "jitaccess: cannot start: ") || !strings.Contains(errOut.String(), config.EnvPort) ||
		!strings.Contains(out.String(), `"msg":"start failed"`) {
		t.Fatalf("stderr %q stdout %q", errOut.String(), out.String())
	}
}

type publisher struct{}

func (publisher) Publish(context.Context, access.Notice, *access.Request) error { return nil }

// The settings' zeros mean off where the settings say so; the expiring
// notice needs a publisher.
func TestBrokerOptions(t *testing.T) {
	o := brokerOptions(Adapters{}, BrokerSettings{ClientID: "0E0E0000-0000-4000-8000-0000000000C1", ExpiringLead: time.Minute}, nil)
	if o.ApproverCacheTTL >= 0 || o.ReconcileMaxGraphCalls >= 0 || o.ExpiringLead != 0 || o.Publisher != nil || o.Scheduler != nil ||
		o.Self.AppID != "0e0e0000-0000-4000-8000-0000000000c1" || o.SelfLookup == nil {
		t.Fatalf("%+v", o)
	}
	o = brokerOptions(Adapters{Publisher: publisher{}}, BrokerSettings{ApproverCacheTTL: time.Second, ReconcileMaxGraphCalls: 7,
		ExpiringLead: time.Minute, AssignmentNamespace: "jit"}, nil)
	if o.ApproverCacheTTL != time.Second || o.ReconcileMaxGraphCalls != 7 || o.ExpiringLead != time.Minute || o.AssignmentNamespace != "jit" {
		t.Fatalf("%+v", o)
	}
}
