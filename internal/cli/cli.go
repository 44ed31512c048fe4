// Package cli implements the sender and reader commands of the jitaccess
// binary: `jitaccess send <type> ...` builds a CloudEvent, validates it with
// the same decoder the handler uses, and sends it to Service Bus (namespace
// with an Entra credential, or a connection string) or to the local sandbox;
// `jitaccess get [id]` reads the API.
//
// Exit codes a script can rely on: 0 done, 1 the send or read failed, 2 the
// command line or the event is invalid (nothing was sent), 3 not found.
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
	ExitOK       = 0
	ExitFailed   = 1
	ExitUsage    = 2
	ExitNotFound = 3
)

// DefaultSandboxURL is where `jitaccess sandbox` listens.
const DefaultSandboxURL = "http://127.0.0.1:7071"

// Env is what the commands read and write; tests replace it.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	HTTP           *http.Client
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

On success it prints {"id":...,"requestId":...,"type":...} and exits 0. It exits
2 without sending when the flags or the event are invalid, 1 when sending fails.
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
	)
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
	common := []string{"request-id", "sandbox", "namespace", "connection-string", "queue", "print", "source", "id", "help"}
	var wrong []string
	fs.Visit(func(f *flag.Flag) {
		for _, a := range append(allowed, common...) {
			if f.Name == a {
				return
			}
		}
		wrong = append(wrong, "--"+f.Name)
	})
	if len(wrong) > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: %s does not apply to this event\n", args[0], strings.Join(wrong, ", "))
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
	switch {
	case *namespace != "" || *connStr != "":
		err = sendServiceBus(ctx, *namespace, *connStr, *queue, *eventID, body)
	default:
		err = sendSandbox(ctx, env, orEnv(*sandbox, orEnv(env.Getenv("JIT_SANDBOX_URL"), DefaultSandboxURL)), *queue, body)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess send %s: not sent: %v\n", args[0], err)
		return ExitFailed
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

const getUsage = `usage: jitaccess get [ID] [flags]

Reads one request (with approvals and history) or, without ID, lists requests.

  --url URL        the API base (default ` + DefaultSandboxURL + ` or $JIT_API_URL), e.g. https://<app>.azurewebsites.net
  --code KEY       function key (or $JIT_FUNCTION_KEY)
  --state STATE    list filter; also --profile, --requester, --limit, --continuation

Prints the JSON answer. Exit 0 found, 3 not found, 1 failure, 2 bad usage.
`

// Get runs `jitaccess get`.
func Get(ctx context.Context, args []string, env Env) int {
	env.defaults()
	fs := flag.NewFlagSet("jitaccess get", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", "", "")
	code := fs.String("code", "", "")
	state := fs.String("state", "", "")
	profile := fs.String("profile", "", "")
	requester := fs.String("requester", "", "")
	limit := fs.String("limit", "", "")
	cont := fs.String("continuation", "", "")
	help := fs.Bool("help", false, "")
	// Allow the id before the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: %v\nrun 'jitaccess get --help' for the flags\n", err)
		return ExitUsage
	}
	if *help {
		fmt.Fprint(env.Stdout, getUsage)
		return ExitOK
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess get: unexpected argument %q\n", fs.Arg(fs.NArg()-1))
		return ExitUsage
	}
	if id != "" && !access.ValidRequestID(id) {
		fmt.Fprintf(env.Stderr, "jitaccess get: %q is not a valid request id\n", id)
		return ExitUsage
	}
	u := strings.TrimRight(orEnv(*base, orEnv(env.Getenv("JIT_API_URL"), DefaultSandboxURL)), "/") + "/api/requests"
	q := url.Values{}
	if id != "" {
		u += "/" + url.PathEscape(id)
	} else {
		for k, v := range map[string]string{"state": *state, "profile": *profile, "requester": *requester, "limit": *limit, "continuation": *cont} {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	if k := orEnv(*code, env.Getenv("JIT_FUNCTION_KEY")); k != "" {
		q.Set("code", k)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: %v\n", err)
		return ExitUsage
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: the API does not answer: %v\n", err)
		return ExitFailed
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var pretty bytes.Buffer
	if json.Indent(&pretty, b, "", "  ") == nil {
		b = pretty.Bytes()
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		fmt.Fprintln(env.Stderr, string(b))
		return ExitNotFound
	case resp.StatusCode/100 != 2:
		fmt.Fprintf(env.Stderr, "jitaccess get: %s\n%s\n", resp.Status, b)
		return ExitFailed
	}
	fmt.Fprintln(env.Stdout, string(b))
	return ExitOK
}

func orEnv(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
