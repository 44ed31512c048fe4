package brokertest

import (
	"context"
	"sync"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// gate is what Dir and RBAC share around each call: it counts the call,
// hands it the next failure a test queued for its method (Fail), then runs
// the hook a test installed (SetHook), and finally fails a call whose
// context is done as the adapters do (transient).
type gate struct {
	mu    sync.Mutex
	calls map[string]int
	fail  map[string][]error
	hook  func(method string, args ...string) error
}

// count returns how often method was called (failed calls included).
func (g *gate) count(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[method]
}

// queue makes err the result of the next call of method (errors queue up).
func (g *gate) queue(method string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail == nil {
		g.fail = map[string][]error{}
	}
	g.fail[method] = append(g.fail[method], err)
}

// setHook installs h, called (unlocked) at the start of every call.
func (g *gate) setHook(h func(method string, args ...string) error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hook = h
}

// enter is the start of every call of method; a non-nil error fails it.
func (g *gate) enter(ctx context.Context, method string, args ...string) error {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]int{}
	}
	g.calls[method]++
	var injected error
	if q := g.fail[method]; len(q) > 0 {
		injected, g.fail[method] = q[0], q[1:]
	}
	hook := g.hook
	g.mu.Unlock()
	if injected != nil {
		return injected
	}
	if hook != nil {
		if err := hook(method, args...); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.ErrTransient, method, err)
	}
	return nil
}
