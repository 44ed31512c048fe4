// Package graph is the Microsoft Graph adapter of jitaccess: it implements
// broker.Directory (and DirectMembers for drift reconciliation) with
// msgraph-sdk-go, and is the one place where Graph errors are translated
// into the kinds of package fault.
//
// The SDK stays inside this package; callers see only broker.User, strings
// and fault errors. How calls are made:
//
//   - The HTTP pipeline is built without kiota's compression handler and
//     without kiota's retry handler: a kiota retry after 429/503 could resend
//     an uncompressed body under a "Content-Encoding: gzip" header
//     (kiota-http-go#183), which Graph refuses with 400. Retries happen here,
//     one level up, by re-issuing the whole SDK call, so every attempt
//     serializes a fresh, valid body.
//   - Retries are bounded in count and in total waiting; Retry-After is
//     honoured, and when the budget is spent the error is fault.ErrTransient
//     with RetryAfter set, so the message comes back later (docs/design.md, rule 7).
//   - Throttling is shared (throttle.go): a 429 (or a 503 with
//     Retry-After) closes the Client's gate for that quota until the
//     Retry-After has passed, for every goroutine. Ending work (removing a
//     member, revoking sessions, ending a PIM assignment) waits for it within
//     its retry budget; every other call fails fast with fault.ErrTransient
//     while it is closed, so the quota that comes back goes to ends first.
//
// Writes whose outcome is ambiguous after a failure (a timeout or a reset
// after the request was sent, a 500/502/504) are not retried here: a retry
// would turn "we added it" into "already a member" (or "we removed it" into
// "was not a member"). Those return fault.ErrTransient to the caller.
package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/identitygovernance"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/jitaccess/jitaccess/internal/broker"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// DefaultBaseURL is Graph v1.0 in the global cloud.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// checkMemberGroupsLimit is Graph's maximum of groupIds per checkMemberGroups call.
const checkMemberGroupsLimit = 20

// maxPages bounds DirectMembers against a server that never stops paging.
const maxPages = 10000

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// BaseURL of Graph (default DefaultBaseURL), e.g. a simulator's
	// http://127.0.0.1:PORT/v1.0. Plain http is accepted for loopback only
	// (kiota refuses to send a token over http elsewhere).
	BaseURL string
	// Scope of the token (default scheme://host[:port] of BaseURL + "/.default").
	Scope string
	// MaxRetries after the first attempt (default 3; negative: none).
	MaxRetries int
	// MaxRetryWait bounds the total time spent waiting between attempts of
	// one operation (default 30s). A Retry-After beyond what is left ends
	// the retries with a transient error carrying that RetryAfter.
	MaxRetryWait time.Duration
	// BaseBackoff is the first wait when Graph gives no Retry-After; it
	// doubles each retry (default 1s).
	BaseBackoff time.Duration
	// AttemptTimeout bounds each HTTP attempt (default 30s).
	AttemptTimeout time.Duration
	// MembersPageSize is sent as $top when listing members (0: Graph's default).
	MembersPageSize int
	// HTTPClient is an optional base client; its Transport is used under the
	// Graph middleware. Its Timeout, if any, applies to each attempt.
	HTTPClient *http.Client
}

// Client talks to Microsoft Graph. It is safe for concurrent use.
//
// It keeps the request adapter, not a *msgraphsdk.GraphServiceClient: a
// struct field of that type makes the whole SDK reachable by reflection (the
// dashboard's html/template calls methods by name, so the linker then keeps
// every exported method of every type reachable from an interface value),
// which took the binary from ~35 MB to ~115 MB and the idle RSS with it
// (BENCHMARKS.md, memory). The root request builders are made per call
// (users(), groups(), identityGovernance()), as the service client makes
// them.
type Client struct {
	cred    azcore.TokenCredential
	adapter abstractions.RequestAdapter
	// root holds the path parameters of the root request builders
	// ({"baseurl": BaseURL}); read-only (each builder copies it).
	root    map[string]string
	opts    Options
	base    *url.URL
	refBase string
	sleep   func(context.Context, time.Duration) error
	now     func() time.Time
	// gates are what the Client's calls know about Graph's quotas, by
	// quotaScope (throttle.go).
	gates [numQuotas]*gate
}

var _ broker.Directory = (*Client)(nil)

// users, groups and identityGovernance are the root request builders over
// the shared request adapter, made as msgraphsdk.GraphServiceClient makes
// them. The service client itself is built once, in New: its constructor
// rewrites the adapter's serializer factories (EnableBackingStore), so
// building one per call, as this adapter once did, raced with the calls in
// flight on other goroutines.
func (c *Client) users() *users.UsersRequestBuilder {
	return users.NewUsersRequestBuilderInternal(c.root, c.adapter)
}

func (c *Client) groups() *groups.GroupsRequestBuilder {
	return groups.NewGroupsRequestBuilderInternal(c.root, c.adapter)
}

func (c *Client) identityGovernance() *identitygovernance.IdentityGovernanceRequestBuilder {
	return identitygovernance.NewIdentityGovernanceRequestBuilderInternal(c.root, c.adapter)
}

// NewManagedIdentityCredential returns azidentity's managed identity
// credential: the user-assigned identity clientID when not empty (the app's
// AZURE_CLIENT_ID), else the system-assigned one. In Azure Functions it
// talks to IDENTITY_ENDPOINT with IDENTITY_HEADER.
func NewManagedIdentityCredential(clientID string) (azcore.TokenCredential, error) {
	var o *azidentity.ManagedIdentityCredentialOptions
	if clientID != "" {
		o = &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)}
	}
	return azidentity.NewManagedIdentityCredential(o)
}

// DefaultScope is scheme://host[:port] of baseURL + "/.default".
func DefaultScope(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("graph base URL %q: not an absolute URL", baseURL)
	}
	return u.Scheme + "://" + u.Host + "/.default", nil
}

// New builds a Client that gets its tokens from cred.
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	if cred == nil {
		return nil, errors.New("graph: credential is nil")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	base, err := url.Parse(opts.BaseURL)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("graph: base URL %q: want an absolute http(s) URL", opts.BaseURL)
	}
	if opts.Scope == "" {
		if opts.Scope, err = DefaultScope(opts.BaseURL); err != nil {
			return nil, err
		}
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 3
	}
	if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.MaxRetryWait <= 0 {
		opts.MaxRetryWait = 30 * time.Second
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 30 * time.Second
	}

	// Only the Graph host gets our token; a nextLink elsewhere gets none.
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{opts.Scope}, []string{base.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph: auth provider: %w", err)
	}
	c := &Client{
		cred:    cred,
		opts:    opts,
		base:    base,
		refBase: opts.BaseURL + "/directoryObjects/",
		sleep:   sleepCtx,
		now:     time.Now,
	}
	for i := range c.gates {
		c.gates[i] = newGate()
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, newHTTPClient(opts.HTTPClient, c.gateTransport))
	if err != nil {
		return nil, fmt.Errorf("graph: request adapter: %w", err)
	}
	adapter.SetBaseUrl(opts.BaseURL)
	// Once, before any call: registers the serializers and enables the
	// adapter's backing store (see users()).
	msgraphsdk.NewGraphServiceClient(adapter)
	c.adapter = adapter
	c.root = map[string]string{"baseurl": adapter.GetBaseUrl()}
	return c, nil
}

// middlewares is Graph's default chain minus compression and retry (see
// the package comment).
func middlewares() []khttp.Middleware {
	co := msgraphsdk.GetDefaultClientOptions()
	return []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&co),
		khttp.NewRedirectHandler(),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
	}
}

// newHTTPClient is base (or kiota's default client) with Graph's
// middleware over wrap(base's transport): wrap is the last hop before the
// network (the throttle gate's, gateTransport).
func newHTTPClient(base *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	if base == nil {
		c := khttp.GetDefaultClient(middlewares()...)
		c.Transport = khttp.NewCustomTransportWithParentTransport(wrap(khttp.GetDefaultTransport()), middlewares()...)
		return c
	}
	c := *base
	parent := base.Transport
	if parent == nil {
		parent = khttp.GetDefaultTransport()
	}
	c.Transport = khttp.NewCustomTransportWithParentTransport(wrap(parent), middlewares()...)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// validKey refuses path segments that would change the URL's meaning.
func validKey(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s != "." && s != ".."
}

// LookupUser resolves an object id or a UPN. Unknown → fault.ErrNotFound.
func (c *Client) LookupUser(ctx context.Context, idOrUPN string) (broker.User, error) {
	op := opLookupUser.name
	if !validKey(idOrUPN) {
		return broker.User{}, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid user key"))
	}
	var u models.Userable
	f := c.call(ctx, opLookupUser, func(ctx context.Context) error {
		var err error
		// kiota path-escapes the key ('#' in guest UPNs → %23).
		u, err = c.users().ByUserId(idOrUPN).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{
				Select: []string{"id", "userPrincipalName", "accountEnabled", "userType"},
			},
		})
		return err
	})
	if f != nil {
		return broker.User{}, f.err(op)
	}
	if u == nil || deref(u.GetId()) == "" {
		return broker.User{}, fault.Wrap(fault.ErrPermanent, "graph "+op, errors.New("answer without id"))
	}
	return broker.User{
		ID:      strings.ToLower(deref(u.GetId())),
		UPN:     deref(u.GetUserPrincipalName()),
		Enabled: deref(u.GetAccountEnabled()),
		Guest:   strings.EqualFold(deref(u.GetUserType()), "Guest"),
	}, nil
}

// MemberOfAny returns the ids (lower-case, in the order given) of groupIDs
// the user is a transitive member of, asking Graph at most 20 ids per call.
func (c *Client) MemberOfAny(ctx context.Context, userID string, groupIDs []string) ([]string, error) {
	op := opCheckGroups.name
	if !validKey(userID) {
		return nil, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid user id"))
	}
	var ids []string
	seen := map[string]bool{}
	for _, g := range groupIDs {
		g = strings.ToLower(strings.TrimSpace(g))
		if g != "" && !seen[g] {
			seen[g] = true
			ids = append(ids, g)
		}
	}
	member := map[string]bool{}
	for start := 0; start < len(ids); start += checkMemberGroupsLimit {
		chunk := ids[start:min(start+checkMemberGroupsLimit, len(ids))]
		var got []string
		f := c.call(ctx, opCheckGroups, func(ctx context.Context) error {
			body := users.NewItemCheckMemberGroupsPostRequestBody()
			body.SetGroupIds(chunk)
			resp, err := c.users().ByUserId(userID).CheckMemberGroups().PostAsCheckMemberGroupsPostResponse(ctx, body, nil)
			if err == nil && resp != nil {
				got = resp.GetValue()
			}
			return err
		})
		if f != nil {
			return nil, f.err(op)
		}
		for _, g := range got {
			member[strings.ToLower(g)] = true
		}
	}
	out := []string{}
	for _, g := range ids {
		if member[g] {
			out = append(out, g)
		}
	}
	return out, nil
}

// AddMember adds userID as a direct member of groupID. added is false when
// it already was one (Graph's 400 "already exist"). Unknown group or user →
// fault.ErrNotFound.
func (c *Client) AddMember(ctx context.Context, groupID, userID string) (bool, error) {
	op := opAddMember.name
	if !validKey(groupID) || !validKey(userID) {
		return false, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid id"))
	}
	f := c.call(ctx, opAddMember, func(ctx context.Context) error {
		ref := models.NewReferenceCreate()
		id := c.refBase + url.PathEscape(userID)
		ref.SetOdataId(&id)
		return c.groups().ByGroupId(groupID).Members().Ref().Post(ctx, ref, nil)
	})
	if f == nil {
		return true, nil
	}
	if f.status == http.StatusBadRequest && strings.Contains(strings.ToLower(f.message), "already exist") {
		return false, nil
	}
	return false, f.err(op)
}

// RemoveMember removes the direct membership. removed is false when userID
// was not a direct member (Graph's 404).
func (c *Client) RemoveMember(ctx context.Context, groupID, userID string) (bool, error) {
	op := opRemoveMember.name
	if !validKey(groupID) || !validKey(userID) {
		return false, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid id"))
	}
	f := c.call(ctx, opRemoveMember, func(ctx context.Context) error {
		return c.groups().ByGroupId(groupID).Members().ByDirectoryObjectId(userID).Ref().Delete(ctx, nil)
	})
	if f == nil {
		return true, nil
	}
	if f.status == http.StatusNotFound {
		return false, nil
	}
	return false, f.err(op)
}

// RevokeSessions invalidates the user's refresh tokens. Unknown user →
// fault.ErrNotFound.
func (c *Client) RevokeSessions(ctx context.Context, userID string) error {
	op := opRevoke.name
	if !validKey(userID) {
		return fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid user id"))
	}
	var ok bool
	f := c.call(ctx, opRevoke, func(ctx context.Context) error {
		resp, err := c.users().ByUserId(userID).RevokeSignInSessions().PostAsRevokeSignInSessionsPostResponse(ctx, nil)
		if err == nil {
			ok = resp != nil && deref(resp.GetValue())
		}
		return err
	})
	if f != nil {
		return f.err(op)
	}
	if !ok {
		return fault.Wrap(fault.ErrPermanent, "graph "+op, errors.New("Graph answered value=false"))
	}
	return nil
}

// DirectMembers lists the object ids (lower-case) of the direct members of
// groupID — users, nested groups and any other directory object — following
// @odata.nextLink. Unknown group → fault.ErrNotFound.
func (c *Client) DirectMembers(ctx context.Context, groupID string) ([]string, error) {
	op := opListMembers.name
	if !validKey(groupID) {
		return nil, fault.Wrap(fault.ErrNotFound, "graph "+op, errors.New("empty or invalid group id"))
	}
	cfg := &groups.ItemMembersRequestBuilderGetRequestConfiguration{
		QueryParameters: &groups.ItemMembersRequestBuilderGetQueryParameters{Select: []string{"id"}},
	}
	if c.opts.MembersPageSize > 0 {
		top := int32(c.opts.MembersPageSize)
		cfg.QueryParameters.Top = &top
	}
	first := c.groups().ByGroupId(groupID).Members()
	next := ""
	var out []string
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, fault.Wrap(fault.ErrPermanent, "graph "+op, fmt.Errorf("more than %d pages", maxPages))
		}
		var resp models.DirectoryObjectCollectionResponseable
		f := c.call(ctx, opListMembers, func(ctx context.Context) error {
			var err error
			if next == "" {
				resp, err = first.Get(ctx, cfg)
			} else {
				resp, err = first.WithUrl(next).Get(ctx, nil)
			}
			return err
		})
		if f != nil {
			return nil, f.err(op)
		}
		if resp == nil {
			break
		}
		for _, o := range resp.GetValue() {
			if o == nil {
				continue
			}
			if id := deref(o.GetId()); id != "" {
				out = append(out, strings.ToLower(id))
			}
		}
		next = deref(resp.GetOdataNextLink())
		if next == "" {
			break
		}
		if nu, err := url.Parse(next); err != nil || !strings.EqualFold(nu.Host, c.base.Host) || nu.Scheme != c.base.Scheme {
			return nil, fault.Wrap(fault.ErrPermanent, "graph "+op, errors.New("nextLink points outside the Graph base URL"))
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Self is who jitaccess is in Entra, read from its own Graph token: the
// application (client) id and the service principal object id. Audit
// records of its own changes carry these (docs/design.md, Semantics).
type Self struct {
	AppID    string
	ObjectID string
	TenantID string
}

// Self gets a Graph token and reads its appid (or azp), oid and tid claims.
// The token is not verified (it came from our own credential) and never
// leaves this function.
func (c *Client) Self(ctx context.Context) (Self, error) {
	const op = "graph read own identity"
	tk, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.opts.Scope}})
	if err != nil {
		f := inspect(err, time.Now())
		if ctx.Err() != nil {
			f.timeout = true // cut by the caller's deadline: transient
		}
		return Self{}, &fault.Error{Kind: f.kind(), Op: op, Err: errors.New("acquiring a token failed")}
	}
	parts := strings.Split(tk.Token, ".")
	if len(parts) != 3 {
		return Self{}, fault.Wrap(fault.ErrPermanent, op, errors.New("token is not a JWT"))
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Self{}, fault.Wrap(fault.ErrPermanent, op, errors.New("token payload is not base64url"))
	}
	var cl struct {
		AppID string `json:"appid"`
		Azp   string `json:"azp"`
		Oid   string `json:"oid"`
		Tid   string `json:"tid"`
	}
	if err := json.Unmarshal(raw, &cl); err != nil {
		return Self{}, fault.Wrap(fault.ErrPermanent, op, errors.New("token payload is not JSON"))
	}
	s := Self{AppID: strings.ToLower(cl.AppID), ObjectID: strings.ToLower(cl.Oid), TenantID: strings.ToLower(cl.Tid)}
	if s.AppID == "" {
		s.AppID = strings.ToLower(cl.Azp)
	}
	if s.AppID == "" || s.ObjectID == "" {
		return Self{}, fault.Wrap(fault.ErrPermanent, op, errors.New("token has no appid/oid claims"))
	}
	return s, nil
}
