package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/api"
)

// deployment is a fake of what the CLI talks to: the sandbox's queue
// endpoint and the read API (handlers/requests.go's JSON). onEvent plays the
// handler: it changes the stored requests when an event is sent; onRead
// runs before each read of one request (to move in-flight states on).
type deployment struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]*api.Request
	order    []string
	events   []access.Event
	reads    int
	key      string // required function key (x-functions-key), if set
	token    string // required bearer token, if set
	status   int    // forced status of the read API, if set
	urls     []string
	onEvent  func(d *deployment, ev access.Event)
	onRead   func(d *deployment, id string)
}

func newDeployment(t *testing.T) *deployment {
	d := &deployment{requests: map[string]*api.Request{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_devhost/queues/{queue}/messages", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev, err := access.DecodeEvent(b)
		if err != nil {
			t.Errorf("the CLI sent an event that does not decode: %v", err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.events = append(d.events, ev)
		if d.onEvent != nil {
			d.onEvent(d, ev)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	auth := func(w http.ResponseWriter, r *http.Request) bool {
		d.urls = append(d.urls, r.URL.String())
		if d.status != 0 {
			w.WriteHeader(d.status)
			w.Write([]byte(`{"error":"forced"}`))
			return false
		}
		if (d.key != "" && r.Header.Get("x-functions-key") != d.key) || (d.token != "" && r.Header.Get("Authorization") != "Bearer "+d.token) {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized"}`))
			return false
		}
		return true
	}
	mux.HandleFunc("GET /api/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !auth(w, r) {
			return
		}
		id := r.PathValue("id")
		d.reads++
		if d.onRead != nil {
			d.onRead(d, id)
		}
		req, ok := d.requests[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no request with this id"}`))
			return
		}
		json.NewEncoder(w).Encode(req)
	})
	// The list: newest first would need times; insertion order will do.
	// The continuation is the index of the next item.
	mux.HandleFunc("GET /api/requests", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !auth(w, r) {
			return
		}
		q := r.URL.Query()
		limit := 50
		if l := q.Get("limit"); l != "" {
			limit, _ = strconv.Atoi(l)
		}
		if st := q.Get("state"); st == "sleeping" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"state must be one of pending, active"}`))
			return
		}
		start := 0
		if c := q.Get("continuation"); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"continuation is not valid for this query"}`))
				return
			}
			start = n
		}
		var items []*api.Request
		i := start
		for ; i < len(d.order) && len(items) < limit; i++ {
			it := d.requests[d.order[i]]
			if st := q.Get("state"); st != "" && it.State != st {
				continue
			}
			items = append(items, it)
		}
		page := map[string]any{"items": items}
		if items == nil {
			page["items"] = []any{}
		}
		if i < len(d.order) {
			page["continuation"] = strconv.Itoa(i)
		}
		json.NewEncoder(w).Encode(page)
	})
	d.Server = httptest.NewServer(mux)
	t.Cleanup(d.Close)
	return d
}

// put stores a request (callers hold d.mu or run before the CLI).
func (d *deployment) put(r *api.Request) {
	if _, ok := d.requests[r.ID]; !ok {
		d.order = append(d.order, r.ID)
	}
	if r.History == nil {
		r.History = []api.HistoryEntry{}
	}
	if r.Approvals == nil {
		r.Approvals = []api.Approval{}
	}
	d.requests[r.ID] = r
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func entry(typ, actor, detail string) api.HistoryEntry {
	return api.HistoryEntry{At: t0, Type: typ, Actor: actor, Detail: detail}
}

func pending(id, requester string) *api.Request {
	return &api.Request{ID: id, Source: "events", State: "pending", Requester: "5e5e0000-0000-4000-8000-000000000001",
		RequesterUPN: requester, Profile: "aks-admin", GroupID: "1c1a0000-0000-4000-8000-000000000002", Activation: "membership",
		Justification: "incident 42", Ticket: "INC-42", Duration: "PT1H", RequestedAt: t0, ApprovalDeadline: t0.Add(24 * time.Hour),
		History: []api.HistoryEntry{entry("requested", requester, "")}}
}
