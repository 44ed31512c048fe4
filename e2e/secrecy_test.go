package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/seed"
)

func secret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestLogsKeepSecrets runs every function of the binary — request events of
// every type with free text in them, bad input, audit records, the sweep,
// the read API with continuations, the dashboard, health — at the most
// verbose log level, captures everything the binary wrote, and checks that
// every line is JSON and that no token, key, connection string, secret
// setting or message body appears in it. (Before committing, a log of the
// event body in broker.HandleEvent was added by hand: this test failed.)
func TestLogsKeepSecrets(t *testing.T) {
	e := newEnv(t)
	continuationKey := secret("ck-")
	e.kill()
	e.vars["JIT_CONTINUATION_KEY"] = continuationKey
	e.vars["JIT_LOG_LEVEL"] = "debug"
	e.start()

	// Free text that senders put in events; none of it may reach the log.
	marks := map[string]string{}
	mark := func(name string) string { m := secret("MARK" + name + "-"); marks[name] = m; return m }
	req := func(id, who string) map[string]string {
		return map[string]string{"requestId": id, "requester": who, "profile": "aks-admin", "duration": "PT2S",
			"justification": mark("justification-" + id), "ticket": mark("ticket-" + id)}
	}
	e.send(access.TypeRequested, req("sec-1", seed.UPN("n01")))
	e.send(access.TypeApproved, map[string]string{"requestId": "sec-1", "approver": seed.UPN("p01"), "comment": mark("comment")})
	e.send(access.TypeRequested, req("sec-2", seed.UPN("n02")))
	e.send(access.TypeDenied, map[string]string{"requestId": "sec-2", "approver": seed.UPN("p01"), "reason": mark("deny")})
	e.send(access.TypeRequested, req("sec-3", seed.UPN("a01")))
	e.send(access.TypeCancelled, map[string]string{"requestId": "sec-3", "by": seed.UPN("a01")})
	e.send(access.TypeRequested, req("sec-4", seed.UPN("s01")))
	e.send(access.TypeApproved, map[string]string{"requestId": "sec-4", "approver": seed.UPN("p03"), "comment": mark("comment-4")})
	e.send(access.TypeRevoked, map[string]string{"requestId": "sec-4", "by": seed.UPN("p01"), "reason": mark("revoke")})
	// Refused and rejected events carry text too.
	e.send(access.TypeApproved, map[string]string{"requestId": "sec-1", "approver": seed.UPN("n01"), "comment": mark("self")})
	e.sendRaw([]byte(`{"specversion":"1.0","id":"` + mark("badid") + `","type":"jit.access.requested","data":{"justification":"` + mark("bad") + `"`))
	e.sendRaw([]byte(mark("notjson")))
	e.sendRaw([]byte(`{"specversion":"1.0","id":"sec-u","source":"/x","type":"jit.access.unknown","data":{"requestId":"sec-5","note":"` + mark("unknown") + `"}}`))
	// Audit records with text in them.
	oob := strings.ReplaceAll(string(oobFixture(t)), `"ipAddress":"198.51.100.7"`, `"ipAddress":"`+mark("ip")+`"`)
	e.audit([]byte(oob), []byte(mark("auditgarbage")))

	time.Sleep(2200 * time.Millisecond)
	e.sweep()
	if v := e.mustGet("sec-1"); v.State != "expired" {
		t.Fatalf("sec-1: %s %v", v.State, v.types())
	}
	// The read API (with a continuation), the dashboard, health.
	get := func(path string) []byte {
		res, err := http.Get(e.host.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return b
	}
	var page struct {
		Continuation string `json:"continuation"`
	}
	if err := json.Unmarshal(get("/api/requests?limit=1"), &page); err != nil || page.Continuation == "" {
		t.Fatalf("no continuation: %v", err)
	}
	get("/api/requests?limit=1&continuation=" + url.QueryEscape(page.Continuation))
	get("/api/requests?limit=1&continuation=" + url.QueryEscape(page.Continuation+"x"))
	get("/api/requests/sec-1")
	get("/api/requests?requester=" + url.QueryEscape(seed.UPN("n01")))
	get("/api/dashboard")
	get("/api/health")

	out := e.proc.output() + e.proc.stderr.String()
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		lines++
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON log line: %.200s", line)
		}
	}
	if lines < 30 {
		t.Fatalf("only %d log lines: the capture is broken", lines)
	}
	forbidden := map[string]string{
		"continuation key":            continuationKey,
		"managed identity secret":     e.ids.Header(),
		"account key (Azurite's)":     "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRz6IFsuFq2UVErCz4I6tq",
		"account key setting":         "AccountKey=",
		"connection string":           "DefaultEndpointsProtocol",
		"bearer token":                "Bearer ",
		"authorization header":        "Authorization:",
		"shared access signature":     "SharedAccessSignature",
		"continuation token as given": page.Continuation,
	}
	for name, m := range marks {
		forbidden["event text "+name] = m
	}
	for what, s := range forbidden {
		if s != "" && strings.Contains(out, s) {
			i := strings.Index(out, s)
			t.Errorf("the log holds the %s: …%s…", what, out[max(0, i-80):min(len(out), i+len(s)+20)])
		}
	}
	if jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`).FindString(out); jwt != "" {
		t.Errorf("the log holds a JWT: %.40s…", jwt)
	}
	t.Logf("%d JSON log lines checked against %d secrets and message texts", lines, len(forbidden))
}
