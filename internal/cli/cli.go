// Package cli implements the sender and reader commands of the jitaccess
// binary: `jitaccess send <type> ...` builds a CloudEvent, validates it with
// the same decoder the handler uses, and sends it to Service Bus (namespace
// with an Entra credential, or a connection string) or to the local sandbox;
// with --wait it follows the event's outcome through the read API.
// `jitaccess get ID` and `jitaccess list` read the API and print tables (or
// the JSON with -o json).
//
// Exit codes a script can rely on (the constants below): 0 done (the event
// applied, with --wait), 1 the send or the read failed, 2 the command line
// or the event is invalid (nothing was sent), 3 not found; and for
// `send --wait`: 4 rejected, 5 refused, 6 the request ended failed, 7 no
// outcome within --timeout.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"

	"github.com/jitaccess/jitaccess/internal/access"
)

// Exit codes.
const (
	// ExitOK: done; with --wait, the event was applied.
	ExitOK = 0
	// ExitFailed: the send or the read failed (unreachable, 5xx, refused
	// 401/403), or the API's answer cannot be read.
	ExitFailed = 1
	// ExitUsage: bad command line or invalid event; nothing was sent.
	ExitUsage = 2
	// ExitNotFound: `get` of an unknown request.
	ExitNotFound = 3
	// ExitRejected: `send --wait`: the event was rejected (recorded with
	// state or history entry "rejected": an invalid request, an unknown
	// profile, a requester who may not ask, a requestId used for other
	// content).
	ExitRejected = 4
	// ExitRefused: `send --wait`: the action was not allowed (history entry
	// "refused": an approval by the requester or a non-approver, a cancel
	// by someone else, any action on an ended request); the request stays
	// as it was.
	ExitRefused = 5
	// ExitRequestFailed: `send --wait`: the event was applied but the
	// request ended failed (Graph or ARM refused the grant for good).
	ExitRequestFailed = 6
	// ExitTimeout: `send --wait`: no outcome within --timeout; the event was
	// sent and may still be applied ('jitaccess get' shows it later).
	ExitTimeout = 7
)

// DefaultSandboxURL is where `jitaccess sandbox` listens.
const DefaultSandboxURL = "http://127.0.0.1:7071"

// Env is what the commands read and write; tests replace it.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	HTTP           *http.Client
	// Loc is the time zone tables show times in (default: the local one).
	Loc *time.Location
}

func (e *Env) defaults() {
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = func() time.Time { return time.Now().UTC() }
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if e.Loc == nil {
		e.Loc = time.Local
	}
}

var sendTypes = map[string]string{
	"requested": access.TypeRequested,
	"approved":  access.TypeApproved,
	"denied":    access.TypeDenied,
	"cancelled": access.TypeCancelled,
	"revoked":   access.TypeRevoked,
}

const sendUsage = `usage: jitaccess send <requested|approved|denied|cancelled|revoked> [flags]
       jitaccess send audit --file FILE [--sandbox URL] [--hub NAME]   (see 'jitaccess send audit --help')

Builds a CloudEvents 1.0 event, checks it exactly as the handler will, and
sends it to the requests queue.

  requested  --requester ID|UPN --profile NAME [--duration PT1H] [--justification TEXT] [--ticket ID] [--request-id ID]
  approved   --request-id ID --approver ID|UPN [--comment TEXT]
  denied     --request-id ID --approver ID|UPN [--reason TEXT]
  cancelled  --request-id ID --by ID|UPN [--reason TEXT]
  revoked    --request-id ID --by ID|UPN [--reason TEXT]

Where to send (one of; default: the local sandbox):
  --sandbox URL              the sandbox of 'make run' (default ` + DefaultSandboxURL + `, or $JIT_SANDBOX_URL)
  --namespace FQDN           Service Bus namespace, signed in with azidentity's default credential
  --connection-string CS     Service Bus connection string (or $JIT_SERVICEBUS_CONNECTION_STRING)
  --queue NAME               queue (default access-requests, or $JIT_REQUESTS_QUEUE)
  --print                    print the event and send nothing
  --source URI               CloudEvent source (default /jitaccess/cli)
  --id ID                    CloudEvent id (default a new UUID; the same id twice is one event)

Waiting for the outcome:
  --wait                     after sending, read the request through the read API until
                             the event's outcome shows, print it as one line, and exit
                             with its code (below)
  --timeout D                how long to wait (default 1m; 90s, 5m or PT5M)
  --api URL                  the read API (default: the --sandbox URL when sending to the
                             sandbox, else $JIT_API_URL; required with Service Bus)
  --code KEY                 function key, sent as the x-functions-key header (or $JIT_FUNCTION_KEY)
  --api-token TOKEN          Entra access token for the read API once sign-in is on, sent as
                             a bearer token; prefer $JIT_API_TOKEN (a flag shows in the
                             process list). Keys and tokens are never printed.
  --utc                      times in the outcome line in UTC (default: the local zone)
  With --wait the API is read before anything is sent: when it cannot be
  read, nothing is sent (exit 1).

How --wait knows the outcome: the read API does not show event ids, so it
notes how many history entries the request had before sending, and waits
for a new entry of this event's kind (requested/rejected, approved/refused,
denied/refused, cancelled/refused, revoked/refused) by the identity the
event asserted; after an applied entry it waits until the request leaves
activating/ending.

Output and exit codes:
  without --wait  prints {"id":...,"requestId":...,"type":...}; 0 sent
  with --wait     prints one line "<outcome>: <what happened>" and exits
                  0  applied   (e.g. "applied: request r1 is active until ...")
                  4  rejected  ("rejected: <reason>; request r1 is rejected")
                  5  refused   ("refused: <reason>; request r1 is pending")
                  6  failed    (applied, but the request ended failed: "failed: ...")
                  7  timeout   (no outcome within --timeout; it may still come)
  always          2  invalid flags or event, nothing sent
                  1  not sent (the target failed), or the read API failed or
                     refused the read (401/403) — before sending with --wait,
                     nothing was sent then
A rejection without a request id (an event the handler cannot read at all,
which this command's own check prevents) is not readable through the API:
--wait then ends in a timeout; the dashboard lists such rejections.
`

// Send runs `jitaccess send`.
func Send(ctx context.Context, args []string, env Env) int {
	env.defaults()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stdout, sendUsage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	if args[0] == "audit" {
		return sendAudit(ctx, args[1:], env)
	}
	typ, ok := sendTypes[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "jitaccess send: unknown event %q (want requested, approved, denied, cancelled or revoked)\n", args[0])
		return ExitUsage
	}
	fs := flag.NewFlagSet("jitaccess send "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		requestID = fs.String("request-id", "", "")
		requester = fs.String("requester", "", "")
		profile   = fs.String("profile", "", "")
		duration  = fs.String("duration", "", "")
		justify   = fs.String("justification", "", "")
		ticket    = fs.String("ticket", "", "")
		approver  = fs.String("approver", "", "")
		by        = fs.String("by", "", "")
		comment   = fs.String("comment", "", "")
		reason    = fs.String("reason", "", "")
		sandbox   = fs.String("sandbox", "", "")
		namespace = fs.String("namespace", "", "")
		connStr   = fs.String("connection-string", "", "")
		queue     = fs.String("queue", "", "")
		printOnly = fs.Bool("print", false, "")
		source    = fs.String("source", "/jitaccess/cli", "")
		eventID   = fs.String("id", "", "")
		help      = fs.Bool("help", false, "")
		wait      = fs.Bool("wait", false, "")
		timeout   = fs.String("timeout", "", "")
		utc       = fs.Bool("utc", false, "")
		api       apiFlags
	)
	fs.StringVar(&api.url, "api", "", "")
	fs.StringVar(&api.key, "code", "", "")
	fs.StringVar(&api.token, "api-token", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: %v\nrun 'jitaccess send --help' for the flags\n", args[0], err)
		return ExitUsage
	}
	if *help {
		fmt.Fprint(env.Stdout, sendUsage)
		return ExitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: unexpected argument %q\n", args[0], fs.Arg(0))
		return ExitUsage
	}
	// Flags that do not belong to this event type are refused, not ignored.
	allowed := map[string][]string{
		access.TypeRequested: {"requester", "profile", "duration", "justification", "ticket"},
		access.TypeApproved:  {"approver", "comment"},
		access.TypeDenied:    {"approver", "reason"},
		access.TypeCancelled: {"by", "reason"},
		access.TypeRevoked:   {"by", "reason"},
	}[typ]
	common := []string{"request-id", "sandbox", "namespace", "connection-string", "queue", "print", "source", "id", "help", "wait"}
	waitOnly := []string{"timeout", "api", "code", "api-token", "utc"}
	var wrong, needWait []string
	fs.Visit(func(f *flag.Flag) {
		for _, a := range append(allowed, common...) {
			if f.Name == a {
				return
			}
		}
		for _, a := range waitOnly {
			if f.Name == a {
				needWait = append(needWait, "--"+f.Name)
				return
			}
		}
		wrong = append(wrong, "--"+f.Name)
	})
	if len(wrong) > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: %s does not apply to this event\n", args[0], strings.Join(wrong, ", "))
		return ExitUsage
	}
	if len(needWait) > 0 && !*wait {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: %s applies only with --wait\n", args[0], strings.Join(needWait, ", "))
		return ExitUsage
	}
	if *wait && *printOnly {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: --wait and --print exclude each other\n", args[0])
		return ExitUsage
	}
	if *requestID == "" {
		if typ != access.TypeRequested {
			fmt.Fprintf(env.Stderr, "jitaccess send %s: --request-id is required\n", args[0])
			return ExitUsage
		}
		*requestID = "req-" + uuid.NewString()
	}
	if *eventID == "" {
		*eventID = uuid.NewString()
	}
	data := map[string]string{"requestId": *requestID}
	put := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	put("requester", *requester)
	put("profile", *profile)
	put("duration", *duration)
	put("justification", *justify)
	put("ticket", *ticket)
	put("approver", *approver)
	put("by", *by)
	put("comment", *comment)
	put("reason", *reason)
	body, err := BuildEvent(*eventID, typ, *source, env.Now(), data)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: invalid event, nothing sent: %v\n", args[0], err)
		return ExitUsage
	}
	if *printOnly {
		fmt.Fprintln(env.Stdout, string(body))
		return ExitOK
	}
	targets := 0
	for _, v := range []string{*sandbox, *namespace, *connStr} {
		if v != "" {
			targets++
		}
	}
	if targets > 1 {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: give only one of --sandbox, --namespace, --connection-string\n", args[0])
		return ExitUsage
	}
	if *queue == "" {
		*queue = orEnv(env.Getenv("JIT_REQUESTS_QUEUE"), "access-requests")
	}
	if *connStr == "" && *namespace == "" && *sandbox == "" {
		*connStr = env.Getenv("JIT_SERVICEBUS_CONNECTION_STRING")
	}
	toSandbox := *namespace == "" && *connStr == ""
	sandboxURL := orEnv(*sandbox, orEnv(env.Getenv("JIT_SANDBOX_URL"), DefaultSandboxURL))
	var w *waiter
	if *wait {
		d, err := parseTimeout(*timeout)
		if err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess send %s: %v\n", args[0], err)
			return ExitUsage
		}
		base := api.url
		switch {
		case base != "":
		case toSandbox:
			base = sandboxURL
		default:
			base = env.Getenv("JIT_API_URL")
		}
		if base == "" {
			fmt.Fprintf(env.Stderr, "jitaccess send %s: --wait with Service Bus needs the read API: --api URL (or $JIT_API_URL)\n", args[0])
			return ExitUsage
		}
		c, err := newAPIClient(env, base, api)
		if err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess send %s: %v\n", args[0], err)
			return ExitUsage
		}
		loc := env.Loc
		if *utc {
			loc = time.UTC
		}
		w = &waiter{api: c, requestID: *requestID, eventID: *eventID, typ: typ, timeout: d, loc: loc,
			actor: orEnv(*requester, orEnv(*approver, *by))}
		if err := w.readBaseline(ctx); err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess send %s: nothing sent: %v\n", args[0], err)
			return ExitFailed
		}
	}
	switch {
	case *namespace != "" || *connStr != "":
		err = sendServiceBus(ctx, *namespace, *connStr, *queue, *eventID, body)
	default:
		err = sendSandbox(ctx, env, sandboxURL, *queue, body)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: not sent: %v\n", args[0], err)
		return ExitFailed
	}
	if w != nil {
		return w.run(ctx, env.Stdout, env.Stderr)
	}
	out, _ := json.Marshal(map[string]string{"id": *eventID, "requestId": *requestID, "type": typ})
	fmt.Fprintln(env.Stdout, string(out))
	return ExitOK
}

// BuildEvent renders a structured-mode CloudEvent and checks it with the
// handler's own decoder, so that what the CLI accepts the handler accepts.
func BuildEvent(id, typ, source string, now time.Time, data map[string]string) ([]byte, error) {
	ev := map[string]any{
		"specversion":     "1.0",
		"id":              id,
		"source":          source,
		"type":            typ,
		"time":            now.UTC().Format(time.RFC3339Nano),
		"datacontenttype": "application/json",
		"data":            data,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	if _, err := access.DecodeEvent(body); err != nil {
		var inv *access.InvalidError
		if errors.As(err, &inv) {
			return nil, errors.New(inv.Reason)
		}
		return nil, err
	}
	return body, nil
}

// ServiceBusSender is the part of *azservicebus.Sender the CLI uses.
type ServiceBusSender interface {
	SendMessage(ctx context.Context, m *azservicebus.Message, o *azservicebus.SendMessageOptions) error
	Close(ctx context.Context) error
}

func sendServiceBus(ctx context.Context, namespace, connStr, queue, eventID string, body []byte) error {
	var client *azservicebus.Client
	var err error
	if connStr != "" {
		client, err = azservicebus.NewClientFromConnectionString(connStr, nil)
	} else {
		cred, cerr := azidentity.NewDefaultAzureCredential(nil)
		if cerr != nil {
			return fmt.Errorf("no Azure credential: %w", cerr)
		}
		client, err = azservicebus.NewClient(namespace, cred, nil)
	}
	if err != nil {
		return err
	}
	defer client.Close(ctx)
	sender, err := client.NewSender(queue, nil)
	if err != nil {
		return err
	}
	defer sender.Close(ctx)
	return SendTo(ctx, sender, eventID, body)
}

// SendTo sends one event; the CloudEvent id doubles as the message id, so
// Service Bus duplicate detection and jitaccess's own dedupe agree.
func SendTo(ctx context.Context, s ServiceBusSender, eventID string, body []byte) error {
	ct := "application/cloudevents+json; charset=utf-8"
	return s.SendMessage(ctx, &azservicebus.Message{Body: body, MessageID: &eventID, ContentType: &ct}, nil)
}

func sendSandbox(ctx context.Context, env Env, base, queue string, body []byte) error {
	u := strings.TrimRight(base, "/") + "/_devhost/queues/" + url.PathEscape(queue) + "/messages"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("the sandbox at %s does not answer (is 'make run' running?): %w", base, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the sandbox answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func orEnv(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
