// Package arm is the Azure Resource Manager adapter of jitaccess for
// azure-role profiles (docs/design.md, The contract (profiles) and Operations): it creates, deletes and lists Azure
// role assignments with the official SDK (armauthorization/v2,
// RoleAssignmentsClient, api-version 2022-04-01) and is the one place where
// ARM errors are translated into the kinds of package fault. Callers see
// only strings, Assignment and fault errors.
//
// # What each ARM answer means
//
// Sources: Microsoft's REST reference for Role Assignments (Create, Delete,
// List For Scope; azure-rest-api-specs,
// specification/authorization/.../stable/2022-04-01/authorization-RoleAssignmentsCalls.json),
// "Troubleshoot Azure RBAC" (learn.microsoft.com/azure/role-based-access-control/troubleshooting),
// "Understand how Azure Resource Manager throttles requests", and the
// Azure CLI's own handling (Azure/azure-cli#32027: decide on the error
// code, not the message, which ARM changed in 2025 on the same
// api-version).
//
//	Assign (PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name})
//	  201                          created: jitaccess made it              → created=true
//	  200                          the same name again (a retry after a lost
//	                               answer, a redelivery): the assignment named
//	                               by jitaccess's request is there          → created=true
//	  409 RoleAssignmentExists     the principal already holds that role at
//	                               that scope under another name: someone
//	                               else's (standing access)                 → created=false, nil
//	  400 PrincipalNotFound        the principal is not yet visible to ARM
//	                               (replication delay after it was created) → ErrTransient
//	  400 RoleAssignmentUpdateNotPermitted  the name is taken by an
//	                               assignment of another principal, role or
//	                               scope (names are unique across
//	                               subscriptions)                           → ErrPermanent
//	  400/404 RoleDefinitionDoesNotExist, other 400                         → ErrPermanent
//	  403 AuthorizationFailed      jitaccess may not write that assignment
//	                               (its RBAC Administrator role or the
//	                               role's condition)                         → ErrPermanent
//	  404 ResourceNotFound, ResourceGroupNotFound, SubscriptionNotFound:
//	                               the scope does not exist (any more)       → ErrNotFound
//	Delete (DELETE of the same)
//	  200                          deleted, with the assignment             → removed=true
//	  204                          "already deleted or does not exist"     → removed=false
//	  404                          the scope itself is gone, and the
//	                               assignments at it with it               → removed=false
//	  409 (ScopeLocked, a delete lock)                                      → ErrPermanent
//	List, ListAtScope (GET ...roleAssignments?$filter=)
//	  200 (nextLink followed)                                             → []Assignment
//	  404 the scope does not exist                                          → ErrNotFound
//	all
//	  429 (Retry-After), 408, 500, 502, 503, 504, timeouts, resets          → ErrTransient
//	  401, 403, other 4xx                                                   → ErrPermanent
//
// Role assignments are eventually consistent (RBAC troubleshooting guide:
// ARM caches, and a change can take up to 10 minutes to take effect; a
// principal just created may not be visible to ARM yet): the answers to
// jitaccess's own PUT and DELETE are the truth, a listing is a hint that
// may predate a write (docs/design.md, The real directory). A grant's
// assignment is named AssignmentName(request id), so everything jitaccess
// wrote for a request can be found, repeated and removed by name.
//
// # Retries
//
// The SDK's retry policy is turned off (policy.RetryOptions.MaxRetries =
// -1: one try) and so is its resource-provider registration policy (it
// would register providers with jitaccess's identity on a 409). Retries
// happen here, bounded in count (Options.MaxRetries) and in total waiting
// (Options.MaxRetryWait), honouring Retry-After; when the budget is spent
// the error is fault.ErrTransient with RetryAfter set. Listings are retried
// on any transient failure; writes only when the answer says nothing was
// done (429, 503, PrincipalNotFound, a token failure): a write whose answer
// was lost is returned as transient, not repeated in place.
//
// # Base URL and token
//
// The base URL (JIT_ARM_BASE_URL, default https://management.azure.com)
// and the token scope (JIT_ARM_SCOPE, default scheme://host[:port] of the
// base URL + "/.default") are set through the SDK's cloud configuration
// (its audience is the scope without "/.default"). azcore refuses to send
// a bearer token over http; plain http is allowed for a loopback base URL
// only (simulators), and no request leaves for another host than the base
// URL's (a nextLink elsewhere is refused before the token is attached).
package arm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"github.com/jitaccess/jitaccess/internal/arm/armid"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// DefaultBaseURL is Azure Resource Manager in the global cloud.
const DefaultBaseURL = "https://management.azure.com"

// maxPages bounds a listing against a server that never stops paging.
const maxPages = 1000

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// BaseURL of ARM (default DefaultBaseURL), e.g. a sovereign cloud's
	// or a simulator's http://127.0.0.1:PORT (plain http: loopback only).
	BaseURL string
	// Scope of the token (default scheme://host[:port] of BaseURL +
	// "/.default"); it must end with "/.default".
	Scope string
	// MaxRetries after the first attempt (default 3; negative: none).
	MaxRetries int
	// MaxRetryWait bounds the total waiting between attempts of one
	// operation (default 30s). A Retry-After beyond what is left ends the
	// retries with a transient error carrying that RetryAfter.
	MaxRetryWait time.Duration
	// BaseBackoff is the first wait when ARM gives no Retry-After; it
	// doubles each retry (default 1s).
	BaseBackoff time.Duration
	// AttemptTimeout bounds each attempt (a whole listing is one attempt;
	// default 30s).
	AttemptTimeout time.Duration
	// HTTPClient is an optional HTTP client (its Transport and Timeout
	// are used; redirects are not followed).
	HTTPClient *http.Client
}

// Assignment is a role assignment as ARM lists it.
type Assignment struct {
	Name  string // a GUID, lower case
	Scope string // as ARM gives it
	// RoleDefinitionID as ARM gives it, usually
	// /subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}.
	RoleDefinitionID string
	PrincipalID      string // lower case
	PrincipalType    string // User, Group, ServicePrincipal, ...
}

// Grants reports whether a gives its principal roleDefinitionID (GUID or
// full id; compared by GUID) at scope: a is at scope or above it (an
// assignment at a subscription or resource group is inherited by the
// cluster and its namespaces).
func (a Assignment) Grants(scope, roleDefinitionID string) bool {
	g, err := armid.RoleDefinitionGUID(roleDefinitionID)
	if err != nil {
		return false
	}
	ag, err := armid.RoleDefinitionGUID(a.RoleDefinitionID)
	if err != nil || ag != g {
		return false
	}
	return atOrAbove(a.Scope, scope)
}

// atOrAbove reports whether scope a is b or an ancestor of b
// (case-insensitive).
func atOrAbove(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, "/")), strings.ToLower(strings.TrimSuffix(b, "/"))
	return a != "" && (a == b || strings.HasPrefix(b, a+"/"))
}

// Client talks to Azure Resource Manager. It is safe for concurrent use.
type Client struct {
	ra    *armauthorization.RoleAssignmentsClient
	opts  Options
	sleep func(context.Context, time.Duration) error
}

// DefaultScope is scheme://host[:port] of baseURL + "/.default".
func DefaultScope(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("ARM base URL %q: not an absolute URL", baseURL)
	}
	return u.Scheme + "://" + u.Host + "/.default", nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New builds a Client that gets its tokens from cred.
func New(cred azcore.TokenCredential, opts Options) (*Client, error) {
	if cred == nil {
		return nil, errors.New("arm: credential is nil")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	base, err := url.Parse(opts.BaseURL)
	if err != nil || base.Host == "" || base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("arm: base URL %q: want an absolute http(s) URL without query", opts.BaseURL)
	}
	insecure := false
	switch base.Scheme {
	case "https":
	case "http":
		if !isLoopback(base.Hostname()) {
			return nil, fmt.Errorf("arm: base URL %q: plain http is allowed for loopback only (the token would travel in clear)", opts.BaseURL)
		}
		insecure = true
	default:
		return nil, fmt.Errorf("arm: base URL %q: want an absolute http(s) URL", opts.BaseURL)
	}
	if opts.Scope == "" {
		if opts.Scope, err = DefaultScope(opts.BaseURL); err != nil {
			return nil, err
		}
	}
	audience, ok := strings.CutSuffix(opts.Scope, "/.default")
	if !ok || audience == "" {
		return nil, fmt.Errorf("arm: token scope %q: must end with /.default", opts.Scope)
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

	co := &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: opts.BaseURL, Audience: audience},
			}},
			Retry:                           policy.RetryOptions{MaxRetries: -1},
			Telemetry:                       policy.TelemetryOptions{ApplicationID: "jitaccess"},
			PerCallPolicies:                 []policy.Policy{hostGuard{origin: origin(base)}},
			InsecureAllowCredentialWithHTTP: insecure,
		},
		DisableRPRegistration: true,
	}
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		co.Transport = &hc
	}
	ra, err := armauthorization.NewRoleAssignmentsClient("", markedCredential{cred}, co)
	if err != nil {
		return nil, fmt.Errorf("arm: role assignments client: %w", err)
	}
	return &Client{ra: ra, opts: opts, sleep: sleepCtx}, nil
}

// Scope is the token scope the client asks for.
func (c *Client) Scope() string { return c.opts.Scope }

// BaseURL is the ARM endpoint the client talks to.
func (c *Client) BaseURL() string { return c.opts.BaseURL }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func toAssignment(r *armauthorization.RoleAssignment) Assignment {
	a := Assignment{Name: strings.ToLower(deref(r.Name))}
	if p := r.Properties; p != nil {
		a.Scope = deref(p.Scope)
		a.RoleDefinitionID = deref(p.RoleDefinitionID)
		a.PrincipalID = strings.ToLower(deref(p.PrincipalID))
		a.PrincipalType = string(deref(p.PrincipalType))
	}
	return a
}

// checkScopeName validates what goes into the request path.
func checkScopeName(op, scope, name string) error {
	if _, err := armid.ParseScope(scope); err != nil {
		return fault.Wrap(fault.ErrPermanent, "arm "+op, err)
	}
	if !armid.IsGUID(name) {
		return fault.Wrap(fault.ErrPermanent, "arm "+op, fmt.Errorf("role assignment name %q is not a GUID", name))
	}
	return nil
}

// Assign creates the role assignment name (a GUID, see AssignmentName)
// giving principalID (a user's object id; principalType User) the role
// roleDefinitionID (GUID or full id) at scope (see ParseScope). created is
// true when the assignment by that name is there after the call (ARM
// answered 201, or 200 for a repeat); false when the principal already held
// that role at that scope under another name (409 RoleAssignmentExists).
// See the package comment for every answer.
func (c *Client) Assign(ctx context.Context, scope, roleDefinitionID, principalID, name string) (bool, error) {
	const op = "create role assignment"
	if err := checkScopeName(op, scope, name); err != nil {
		return false, err
	}
	roleID, err := armid.RoleDefinitionResourceID(scope, roleDefinitionID)
	if err != nil {
		return false, fault.Wrap(fault.ErrPermanent, "arm "+op, err)
	}
	if !armid.IsGUID(principalID) {
		return false, fault.Wrap(fault.ErrPermanent, "arm "+op, fmt.Errorf("principal id %q is not a GUID", principalID))
	}
	principal := strings.ToLower(principalID)
	user := armauthorization.PrincipalTypeUser
	var got armauthorization.RoleAssignment
	f := c.call(ctx, retryUnprocessed, func(ctx context.Context) error {
		resp, err := c.ra.Create(ctx, scope, strings.ToLower(name), armauthorization.RoleAssignmentCreateParameters{
			Properties: &armauthorization.RoleAssignmentProperties{
				RoleDefinitionID: &roleID,
				PrincipalID:      &principal,
				PrincipalType:    &user,
			},
		}, nil)
		if err == nil {
			got = resp.RoleAssignment
		}
		return err
	})
	if f != nil {
		if f.status == http.StatusConflict && f.code == CodeRoleAssignmentExists {
			return false, nil
		}
		return false, f.err(op)
	}
	// The answer must describe what was asked for.
	a := toAssignment(&got)
	gotRole, _ := armid.RoleDefinitionGUID(a.RoleDefinitionID)
	wantRole, _ := armid.RoleDefinitionGUID(roleID)
	switch {
	case a.Name != "" && a.Name != strings.ToLower(name),
		a.PrincipalID != "" && a.PrincipalID != principal,
		a.RoleDefinitionID != "" && gotRole != wantRole,
		a.Scope != "" && !strings.EqualFold(a.Scope, scope):
		return false, fault.Wrap(fault.ErrPermanent, "arm "+op, fmt.Errorf("the answer describes another assignment (name %s, principal %s, role %s, scope %s)", a.Name, a.PrincipalID, a.RoleDefinitionID, a.Scope))
	}
	return true, nil
}

// Delete deletes the role assignment name at scope. removed is true when
// ARM deleted it (200), false when there was none (204) or the scope is
// gone (404).
func (c *Client) Delete(ctx context.Context, scope, name string) (bool, error) {
	const op = "delete role assignment"
	if err := checkScopeName(op, scope, name); err != nil {
		return false, err
	}
	status := 0
	f := c.call(ctx, retryUnprocessed, func(ctx context.Context) error {
		var raw *http.Response
		_, err := c.ra.Delete(runtime.WithCaptureResponse(ctx, &raw), scope, strings.ToLower(name), nil)
		if err == nil && raw != nil {
			status = raw.StatusCode
		}
		return err
	})
	if f != nil {
		if f.status == http.StatusNotFound {
			return false, nil
		}
		return false, f.err(op)
	}
	// 200 carries the deleted assignment; 204: there was none.
	return status == http.StatusOK, nil
}

// List returns principalID's role assignments that apply at scope: at it,
// above it (inherited) and below it (ARM's $filter=principalId eq '{id}').
// Use Assignment.Grants to find the ones that give a role at scope.
func (c *Client) List(ctx context.Context, scope, principalID string) ([]Assignment, error) {
	const op = "list role assignments"
	if !armid.IsGUID(principalID) {
		return nil, fault.Wrap(fault.ErrPermanent, "arm "+op, fmt.Errorf("principal id %q is not a GUID", principalID))
	}
	// The SDK sends $filter unencoded (x-ms-skip-url-encoding): encode it.
	return c.list(ctx, op, scope, "principalId%20eq%20'"+strings.ToLower(principalID)+"'")
}

// ListAtScope returns the role assignments at scope and above it (ARM's
// $filter=atScope()), of every principal: for reconciliation. Assignments
// below the scope (a cluster's namespaces) are not included.
func (c *Client) ListAtScope(ctx context.Context, scope string) ([]Assignment, error) {
	return c.list(ctx, "list role assignments at scope", scope, "atScope()")
}

// list runs one listing, following nextLink. A failed page restarts the
// listing (the SDK's pager cannot resume after an error); the whole
// listing is one attempt.
func (c *Client) list(ctx context.Context, op, scope, filter string) ([]Assignment, error) {
	if _, err := armid.ParseScope(scope); err != nil {
		return nil, fault.Wrap(fault.ErrPermanent, "arm "+op, err)
	}
	var out []Assignment
	f := c.call(ctx, retryAll, func(ctx context.Context) error {
		out = nil
		pager := c.ra.NewListForScopePager(scope, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
		for page := 0; pager.More(); page++ {
			if page >= maxPages {
				return fmt.Errorf("more than %d pages", maxPages)
			}
			resp, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, r := range resp.Value {
				if r != nil {
					out = append(out, toAssignment(r))
				}
			}
		}
		return nil
	})
	if f != nil {
		return nil, f.err(op)
	}
	if out == nil {
		out = []Assignment{}
	}
	return out, nil
}
