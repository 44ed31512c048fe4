package broker

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

// DefaultApproverCacheTTL is how long a positive approver resolution is kept
// when Options.ApproverCacheTTL is 0.
const DefaultApproverCacheTTL = time.Minute

// maxApproverCacheEntries bounds the cache; approvers are few (the members of
// the profiles' approver groups), so this is never reached in practice.
const maxApproverCacheEntries = 4096

// approverCache remembers, for a short time, that an asserted identity
// resolved to an enabled, non-guest user who is a transitive member of one of
// a set of approver groups. Only that positive answer is kept: a refusal, an
// unknown or disabled user and any Graph error are never cached, so a newly
// added approver works at once and every "no" is asked again. The price is
// stated in README and SECURITY.md: an approver removed from the approver
// groups (or disabled) can still approve for at most the TTL.
//
// The cache only saves Graph calls; it never decides anything the domain
// would not: the cached Actor is exactly what Graph answered (object id, UPN,
// flags), and self-approval is still judged on object ids by the domain.
type approverCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]approverEntry
}

type approverEntry struct {
	actor   access.Actor
	expires time.Time
}

func newApproverCache(ttl time.Duration) *approverCache {
	if ttl < 0 {
		return nil
	}
	if ttl == 0 {
		ttl = DefaultApproverCacheTTL
	}
	return &approverCache{ttl: ttl, m: map[string]approverEntry{}}
}

func approverKey(asserted string, groups []string) string {
	g := slices.Clone(groups)
	for i := range g {
		g[i] = strings.ToLower(g[i])
	}
	slices.Sort(g)
	return strings.ToLower(strings.TrimSpace(asserted)) + "\x00" + strings.Join(g, ",")
}

// get returns the cached actor for (asserted, groups) if it is still fresh.
func (c *approverCache) get(asserted string, groups []string, now time.Time) (access.Actor, bool) {
	if c == nil {
		return access.Actor{}, false
	}
	k := approverKey(asserted, groups)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return access.Actor{}, false
	}
	if !now.Before(e.expires) || now.Before(e.expires.Add(-c.ttl)) {
		// Expired, or the clock went back: ask Graph again.
		delete(c.m, k)
		return access.Actor{}, false
	}
	a := e.actor
	a.Asserted = asserted
	return a, true
}

// put keeps a only if it is a positive approver resolution.
func (c *approverCache) put(asserted string, groups []string, a access.Actor, now time.Time) {
	if c == nil || len(groups) == 0 || !a.Found || !a.Enabled || a.Guest || !a.InGroups || a.ID == "" {
		return
	}
	k := approverKey(asserted, groups)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxApproverCacheEntries {
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxApproverCacheEntries {
			clear(c.m)
		}
	}
	c.m[k] = approverEntry{actor: a, expires: now.Add(c.ttl)}
}
