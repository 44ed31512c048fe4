package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/api"
)

// ListBound is how many requests `jitaccess list` fetches at most without
// --all; past it, it says that more remain.
const ListBound = 1000

// maxListPage is the read API's largest page (handlers.MaxListLimit).
const maxListPage = 1000

const apiFlagsUsage = `Where to read (the read API):
  --api URL          the API base, e.g. https://<app>.azurewebsites.net
                     (default $JIT_API_URL, else the sandbox ` + DefaultSandboxURL + `; --url is the same flag)
  --code KEY         function key, sent as the x-functions-key header (or $JIT_FUNCTION_KEY)
  --api-token TOKEN  an Entra access token for the app, sent as a bearer token, for a
                     deployment with sign-in on (App Service Authentication). Prefer
                     $JIT_API_TOKEN: a flag shows in the process list. For example
                     JIT_API_TOKEN=$(az account get-access-token --resource api://<app client id> --query accessToken -o tsv)
                     Keys and tokens go in headers only, never over plain http to
                     another machine, and are never printed.
`

const getUsage = `usage: jitaccess get ID [flags]

Shows one request: its fields, aligned, then its approvals and its history
as a table (time, type, actor, detail). Times are in the local time zone
(--utc: in UTC); the JSON keeps the API's UTC times. Text that senders wrote
(justification, comments, reasons) is shown on one line, with control
characters escaped.

  -o, --output FORMAT  table (default) or json (the API's JSON, as it is)
  --utc                times in UTC

` + apiFlagsUsage + `
Without ID, 'jitaccess get' is 'jitaccess list'.

Exit codes: 0 found, 3 no such request, 1 the API failed or refused the read
(unreachable, 5xx, 401, 403), 2 bad usage.
`

const listUsage = `usage: jitaccess list [flags]

Lists requests, in the order the store keeps them, in a table: id, state,
requester, profile, when the grant ends or ended, and when the access is
gone by (an ended grant: its end plus the token lifetime or the RBAC caches'
bound). It follows the API's continuations up to 1000 requests, or all of
them with --all.

  --state STATE        pending, active, expired, revoked, cancelled, denied,
                       timedout, rejected, failed (or activating, ending)
  --profile NAME       requests of one profile
  --requester ID|UPN   requests of one requester
  --limit N            requests per page asked of the API (1-1000; default the API's 50)
  --all                follow every continuation (no bound)
  --continuation TOKEN start from a continuation an earlier page returned
  -o, --output FORMAT  table (default) or json: one JSON array of every
                       request fetched
  --utc                times in UTC

` + apiFlagsUsage + `
Exit codes: 0 listed (also when nothing matches), 1 the API failed or
refused the read, 2 bad usage (also when the API refuses a parameter).
`

// readFlags is the flag set of get and list.
type readFlags struct {
	fs        *flag.FlagSet
	api       apiFlags
	output    string
	utc       bool
	help      bool
	state     string
	profile   string
	requester string
	limit     int
	all       bool
	cont      string
}

func newReadFlags(name string) *readFlags {
	f := &readFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.api.url, "api", "", "")
	fs.StringVar(&f.api.url, "url", "", "")
	fs.StringVar(&f.api.key, "code", "", "")
	fs.StringVar(&f.api.token, "api-token", "", "")
	fs.StringVar(&f.output, "o", "table", "")
	fs.StringVar(&f.output, "output", "table", "")
	fs.BoolVar(&f.utc, "utc", false, "")
	fs.BoolVar(&f.help, "help", false, "")
	fs.StringVar(&f.state, "state", "", "")
	fs.StringVar(&f.profile, "profile", "", "")
	fs.StringVar(&f.requester, "requester", "", "")
	fs.IntVar(&f.limit, "limit", 0, "")
	fs.BoolVar(&f.all, "all", false, "")
	fs.StringVar(&f.cont, "continuation", "", "")
	return f
}

var listOnly = []string{"state", "profile", "requester", "limit", "all", "continuation"}

func (f *readFlags) client(env Env) (*apiClient, error) {
	return newAPIClient(env, orEnv(f.api.url, orEnv(env.Getenv("JIT_API_URL"), DefaultSandboxURL)), f.api)
}

func (f *readFlags) checkOutput() error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("-o must be table or json, not %q", clip(f.output, 40))
	}
	return nil
}

func (f *readFlags) loc(env Env) *time.Location {
	if f.utc {
		return time.UTC
	}
	return env.Loc
}

// Get runs `jitaccess get`.
func Get(ctx context.Context, args []string, env Env) int {
	env.defaults()
	f := newReadFlags("jitaccess get")
	// The id may come before, between or after the flags.
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: %v\nrun 'jitaccess get --help' for the flags\n", err)
		return ExitUsage
	}
	if f.help {
		fmt.Fprint(env.Stdout, getUsage)
		return ExitOK
	}
	if len(pos) > 1 {
		fmt.Fprintf(env.Stderr, "jitaccess get: unexpected argument %q (one request id at a time)\n", clip(pos[1], 80))
		return ExitUsage
	}
	if len(pos) == 0 {
		return List(ctx, args, env)
	}
	id := pos[0]
	var wrong []string
	f.fs.Visit(func(fl *flag.Flag) {
		for _, n := range listOnly {
			if fl.Name == n {
				wrong = append(wrong, "--"+n)
			}
		}
	})
	if len(wrong) > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess get: %s applies to listing, not to one request\n", strings.Join(wrong, ", "))
		return ExitUsage
	}
	if !access.ValidRequestID(id) {
		fmt.Fprintf(env.Stderr, "jitaccess get: %q is not a valid request id\n", clip(id, 80))
		return ExitUsage
	}
	if err := f.checkOutput(); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: %v\n", err)
		return ExitUsage
	}
	c, err := f.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: %v\n", err)
		return ExitUsage
	}
	a, err := c.getRequest(ctx, id)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: the API at %s does not answer: %v\n", c.base, err)
		return ExitFailed
	}
	switch {
	case a.Status == 404:
		fmt.Fprintf(env.Stderr, "jitaccess get: no request %q\n", id)
		return ExitNotFound
	case a.denied():
		fmt.Fprintf(env.Stderr, "jitaccess get: %s\n", a.deniedHint())
		return ExitFailed
	case a.Status/100 != 2:
		fmt.Fprintf(env.Stderr, "jitaccess get: the API answered %s\n", a.message())
		return ExitFailed
	}
	if f.output == "json" {
		var pretty bytes.Buffer
		if json.Indent(&pretty, a.Body, "", "  ") != nil {
			fmt.Fprintln(env.Stderr, "jitaccess get: the API's answer is not JSON")
			return ExitFailed
		}
		fmt.Fprintln(env.Stdout, pretty.String())
		return ExitOK
	}
	var r api.Request
	if err := json.Unmarshal(a.Body, &r); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess get: the API's answer does not read as a request: %v\n", err)
		return ExitFailed
	}
	writeRequest(env.Stdout, &r, f.loc(env), env.Now())
	return ExitOK
}

// List runs `jitaccess list`.
func List(ctx context.Context, args []string, env Env) int {
	env.defaults()
	f := newReadFlags("jitaccess list")
	if err := f.fs.Parse(args); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess list: %v\nrun 'jitaccess list --help' for the flags\n", err)
		return ExitUsage
	}
	if f.help {
		fmt.Fprint(env.Stdout, listUsage)
		return ExitOK
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess list: unexpected argument %q (to read one request: jitaccess get ID)\n", clip(f.fs.Arg(0), 80))
		return ExitUsage
	}
	if err := f.checkOutput(); err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess list: %v\n", err)
		return ExitUsage
	}
	limitSet := false
	f.fs.Visit(func(fl *flag.Flag) { limitSet = limitSet || fl.Name == "limit" })
	if limitSet && (f.limit < 1 || f.limit > maxListPage) {
		fmt.Fprintf(env.Stderr, "jitaccess list: --limit must be from 1 to %d\n", maxListPage)
		return ExitUsage
	}
	if f.state != "" && !knownState(f.state) {
		fmt.Fprintf(env.Stderr, "jitaccess list: unknown --state %q (want pending, active, expired, revoked, cancelled, denied, timedout, rejected, failed, activating or ending)\n", clip(f.state, 40))
		return ExitUsage
	}
	c, err := f.client(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "jitaccess list: %v\n", err)
		return ExitUsage
	}
	q := url.Values{}
	for k, v := range map[string]string{"state": f.state, "profile": f.profile, "requester": f.requester} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.limit > 0 {
		q.Set("limit", strconv.Itoa(f.limit))
	}
	var (
		items      []json.RawMessage
		unreadable []string
		cont       = f.cont
		pages      int
	)
	for {
		if cont != "" {
			q.Set("continuation", cont)
		}
		a, err := c.get(ctx, "requests", q)
		if err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess list: the API at %s does not answer: %v\n", c.base, err)
			return ExitFailed
		}
		switch {
		case a.denied():
			fmt.Fprintf(env.Stderr, "jitaccess list: %s\n", a.deniedHint())
			return ExitFailed
		case a.Status == 400:
			fmt.Fprintf(env.Stderr, "jitaccess list: the API refused the query: %s\n", a.message())
			return ExitUsage
		case a.Status/100 != 2:
			fmt.Fprintf(env.Stderr, "jitaccess list: the API answered %s\n", a.message())
			return ExitFailed
		}
		var page struct {
			Items        []json.RawMessage `json:"items"`
			Continuation string            `json:"continuation"`
			Unreadable   []string          `json:"unreadable"`
		}
		if err := json.Unmarshal(a.Body, &page); err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess list: the API's answer does not read as a list: %v\n", err)
			return ExitFailed
		}
		items = append(items, page.Items...)
		unreadable = append(unreadable, page.Unreadable...)
		next := page.Continuation
		if next == "" {
			cont = ""
			break
		}
		if next == cont {
			// A continuation that does not move on must not loop.
			fmt.Fprintln(env.Stderr, "jitaccess list: the API returned the same continuation twice; stopping")
			cont = ""
			break
		}
		cont = next
		// Without --all: a bound on requests, and on pages (a page may be
		// empty and still continue, when unreadable rows were left out).
		if pages++; !f.all && (len(items) >= ListBound || pages >= ListBound) {
			break
		}
	}
	if len(unreadable) > 0 {
		fmt.Fprintf(env.Stderr, "jitaccess list: %d stored requests could not be read and are left out: %s\n",
			len(unreadable), clean(clip(strings.Join(unreadable, ", "), 500)))
	}
	if cont != "" {
		fmt.Fprintf(env.Stderr, "jitaccess list: showing the first %d requests; more remain (--all for every one, or --continuation %s)\n", len(items), cont)
	}
	if f.output == "json" {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(items, "", "  ")
		if err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess list: the API's items are not JSON: %v\n", err)
			return ExitFailed
		}
		fmt.Fprintln(env.Stdout, string(b))
		return ExitOK
	}
	reqs := make([]api.Request, 0, len(items))
	for _, it := range items {
		var r api.Request
		if err := json.Unmarshal(it, &r); err != nil {
			fmt.Fprintf(env.Stderr, "jitaccess list: an item does not read as a request: %v\n", err)
			return ExitFailed
		}
		reqs = append(reqs, r)
	}
	writeList(env.Stdout, reqs, f.loc(env))
	return ExitOK
}

// parseInterspersed parses flags and returns the other arguments, which
// may stand anywhere ("--" ends the flags).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func knownState(s string) bool {
	for _, p := range access.PublicStates {
		if string(p) == s {
			return true
		}
	}
	return s == string(access.Activating) || s == string(access.Ending)
}

// timeFormat is how the tables show a moment.
const timeFormat = "2006-01-02 15:04:05 MST"

func showTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(timeFormat)
}

// relative says how far ahead a moment is ("in 59m"), for moments ahead.
func relative(t, now time.Time) string {
	if t.IsZero() || !t.After(now) {
		return ""
	}
	d := t.Sub(now).Round(time.Second)
	if d >= time.Minute {
		d = d.Round(time.Minute)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return " (in " + s + ")"
}

// table is a tabwriter whose lines lose their trailing blanks (an empty
// last cell would otherwise leave the padding of the one before it).
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) Flush() {
	t.Writer.Flush()
	for line := range strings.Lines(t.buf.String()) {
		fmt.Fprintln(t.out, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}

// writeRequest renders one request for a person.
func writeRequest(w io.Writer, r *api.Request, loc *time.Location, now time.Time) {
	tw := newTable(w)
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", name, value)
		}
	}
	field("id", clean(r.ID))
	field("state", clean(r.State))
	if r.Source != "" && r.Source != "events" {
		field("source", clean(r.Source))
	}
	requester := clean(who(r))
	if r.RequesterUPN != "" && r.Requester != "" {
		requester += " (" + clean(r.Requester) + ")"
	}
	field("requester", requester)
	field("profile", clean(r.Profile))
	field("activation", clean(r.Activation))
	field("group", clean(r.GroupID))
	field("scope", clean(r.Scope))
	field("role definition", clean(r.RoleDefinitionID))
	field("justification", clean(r.Justification))
	field("ticket", clean(r.Ticket))
	field("duration", clean(r.Duration))
	field("requested", showTime(r.RequestedAt, loc))
	if !r.ApprovalDeadline.IsZero() {
		field("approval deadline", showTime(r.ApprovalDeadline, loc)+relative(r.ApprovalDeadline, now))
	}
	field("activated", showTime(r.ActivatedAt, loc))
	if !r.EndsAt.IsZero() {
		rel := ""
		if r.EndedAt.IsZero() {
			rel = relative(r.EndsAt, now)
		}
		field("ends", showTime(r.EndsAt, loc)+rel)
	}
	field("ended", showTime(r.EndedAt, loc))
	if !r.AccessGoneBy.IsZero() {
		field("access gone by", showTime(r.AccessGoneBy, loc)+relative(r.AccessGoneBy, now))
	}
	field("reason", clean(r.Reason))
	field("note", clean(r.Note))
	tw.Flush()
	if len(r.Approvals) > 0 {
		fmt.Fprintln(w, "\napprovals:")
		tw = newTable(w)
		fmt.Fprintln(tw, "  TIME\tAPPROVER\tCOMMENT")
		for _, a := range r.Approvals {
			who := a.ApproverUPN
			if who == "" {
				who = a.Approver
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", showTime(a.At, loc), clean(who), clean(a.Comment))
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nhistory:")
	tw = newTable(w)
	fmt.Fprintln(tw, "  TIME\tTYPE\tACTOR\tDETAIL")
	for _, h := range r.History {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", showTime(h.At, loc), clean(h.Type), clean(h.Actor), clean(h.Detail))
	}
	tw.Flush()
}

// writeList renders requests as a table.
func writeList(w io.Writer, reqs []api.Request, loc *time.Location) {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATE\tREQUESTER\tPROFILE\tENDS/ENDED\tACCESS GONE BY")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for i := range reqs {
		r := &reqs[i]
		end := r.EndedAt
		if end.IsZero() {
			end = r.EndsAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", clean(r.ID), clean(r.State), dash(clean(who(r))), clean(r.Profile),
			dash(showTime(end, loc)), dash(showTime(r.AccessGoneBy, loc)))
	}
	tw.Flush()
}
