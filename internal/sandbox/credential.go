package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// identityCredential gets the sandbox's tokens from its managed-identity
// endpoint (internal/idsim) with the App Service protocol, as azidentity
// does in Azure Functions, without IDENTITY_ENDPOINT in the process
// environment: the endpoint and header are given, not read from it.
type identityCredential struct {
	endpoint, header string
	client           *http.Client

	mu     sync.Mutex
	tokens map[string]azcore.AccessToken // by resource
}

func newIdentityCredential(endpoint, header string) *identityCredential {
	return &identityCredential{endpoint: endpoint, header: header, client: &http.Client{Timeout: 10 * time.Second},
		tokens: map[string]azcore.AccessToken{}}
}

// GetToken returns a token for the one scope asked (resource + "/.default"),
// reused until five minutes before it expires.
func (c *identityCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(o.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("sandbox identity: want one scope, got %d", len(o.Scopes))
	}
	resource := strings.TrimSuffix(o.Scopes[0], "/.default")
	c.mu.Lock()
	tok, ok := c.tokens[resource]
	c.mu.Unlock()
	if ok && time.Until(tok.ExpiresOn) > 5*time.Minute {
		return tok, nil
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {resource}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("X-IDENTITY-HEADER", c.header)
	resp, err := c.client.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("sandbox identity: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return azcore.AccessToken{}, fmt.Errorf("sandbox identity: status %d", resp.StatusCode)
	}
	var r struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		return azcore.AccessToken{}, errors.New("sandbox identity: no token in the answer")
	}
	exp, err := strconv.ParseInt(r.ExpiresOn, 10, 64)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("sandbox identity: expires_on %q", r.ExpiresOn)
	}
	tok = azcore.AccessToken{Token: r.AccessToken, ExpiresOn: time.Unix(exp, 0)}
	c.mu.Lock()
	c.tokens[resource] = tok
	c.mu.Unlock()
	return tok, nil
}
