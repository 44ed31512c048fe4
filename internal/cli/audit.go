package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

const sendAuditUsage = `usage: jitaccess send audit --file FILE [--sandbox URL] [--hub NAME]

Plays one Entra audit Event Hubs event (the diagnostic setting's
{"records":[...]}, e.g. handlers/testdata/audit/pim_activation.json, a portal
PIM activation of aks-admin by n01) into the local sandbox's EntraAuditEvents
function. FILE "-" reads standard input. The content is sent as it is, even
when it is not JSON (the function counts and skips what it cannot read).

  --sandbox URL   the sandbox of 'make run' (default ` + DefaultSandboxURL + `, or $JIT_SANDBOX_URL)
  --hub NAME      event hub (default insights-logs-auditlogs, or $JIT_AUDIT_HUB)

Exit 0 delivered, 1 failure, 2 bad usage.
`

// maxAuditEvent is Event Hubs' event size limit.
const maxAuditEvent = 1 << 20

// sendAudit runs `jitaccess send audit`.
func sendAudit(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("jitaccess send audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("file", "", "")
	sandbox := fs.String("sandbox", "", "")
	hub := fs.String("hub", "", "")
	help := fs.Bool("help", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: %v\n%s", err, sendAuditUsage)
		return ExitUsage
	}
	if *help {
		fmt.Fprint(env.Stdout, sendAuditUsage)
		return ExitOK
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprint(env.Stderr, "jitaccess send audit: --file is required (and nothing else)\n"+sendAuditUsage)
		return ExitUsage
	}
	var content []byte
	var err error
	if *file == "-" {
		content, err = io.ReadAll(io.LimitReader(os.Stdin, maxAuditEvent+1))
	} else {
		content, err = os.ReadFile(*file)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: %v\n", err)
		return ExitUsage
	}
	if len(content) > maxAuditEvent {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: %s is over the 1 MB event size limit\n", *file)
		return ExitUsage
	}
	body, _ := json.Marshal([]string{string(content)})
	base := orEnv(*sandbox, orEnv(env.Getenv("JIT_SANDBOX_URL"), DefaultSandboxURL))
	name := orEnv(*hub, orEnv(env.Getenv("JIT_AUDIT_HUB"), "insights-logs-auditlogs"))
	u := strings.TrimRight(base, "/") + "/_devhost/eventhubs/" + url.PathEscape(name) + "/events"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: %v\n", err)
		return ExitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.HTTP.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: the sandbox at %s does not answer (is 'make run' running?): %v\n", base, err)
		return ExitFailed
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(env.Stderr, "jitaccess send audit: the sandbox answered %s: %s\n", resp.Status, strings.TrimSpace(string(msg)))
		return ExitFailed
	}
	out, _ := json.Marshal(map[string]any{"hub": name, "bytes": len(content), "status": "delivered"})
	fmt.Fprintln(env.Stdout, string(out))
	return ExitOK
}
