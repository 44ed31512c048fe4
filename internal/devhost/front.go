package devhost

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The front listener: the /_devhost endpoints and the HTTP functions,
// forwarded to the handler.

// MaxMessageBytes is the Service Bus standard tier's message size.
const MaxMessageBytes = 256 << 10

func (h *Host) frontHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_devhost/queues/{queue}/messages", func(w http.ResponseWriter, r *http.Request) {
		if q := r.PathValue("queue"); h.queueFn == nil || q != h.QueueName() {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no function listens on queue " + fmt.Sprintf("%q", q)})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxMessageBytes))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "message over 256 KiB"})
			return
		}
		if at := r.Header.Get("ScheduledEnqueueTimeUtc"); at != "" {
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "ScheduledEnqueueTimeUtc must be RFC 3339"})
				return
			}
			writeJSON(w, http.StatusCreated, map[string]any{"sequenceNumber": h.Schedule(body, t)})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"messageId": h.Enqueue(body)})
	})
	mux.HandleFunc("GET /_devhost/deadletter", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"items": h.DeadLetters()})
	})
	mux.HandleFunc("POST /_devhost/timers/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := h.FireTimer(r.Context(), r.PathValue("name")); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "fired"})
	})
	mux.HandleFunc("POST /_devhost/eventhubs/{hub}/events", func(w http.ResponseWriter, r *http.Request) {
		if h.auditFn == nil || r.PathValue("hub") != h.auditFn.Trigger().EventHubName {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no function listens on this event hub"})
			return
		}
		var events []string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&events); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON array of strings"})
			return
		}
		if err := h.DeliverAuditBatch(r.Context(), events); err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "delivered"})
	})
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(h.handler)
			pr.Out.URL.Path = pr.In.URL.Path
			pr.Out.URL.RawPath = pr.In.URL.RawPath
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
			pr.Out.Header.Set("X-Azure-Functions-HostVersion", "devhost")
			h.signIn(pr.In, pr.Out.Header)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "the handler does not answer"})
		},
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f := h.matchHTTP(r)
		if f == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if !h.authorized(*f, r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	return mux
}

// matchHTTP finds the HTTP function whose route and methods match r.
func (h *Host) matchHTTP(r *http.Request) *Function {
	path := r.URL.Path
	prefix := "/"
	if h.routePrefix != "" {
		prefix = "/" + h.routePrefix + "/"
	}
	if !strings.HasPrefix(path, prefix) {
		return nil
	}
	rest := strings.Trim(strings.TrimPrefix(path, prefix), "/")
	for i := range h.fns {
		f := &h.fns[i]
		t := f.Trigger()
		if !strings.EqualFold(t.Type, "httpTrigger") {
			continue
		}
		route := t.Route
		if route == "" {
			route = f.Name
		}
		if !routeMatches(route, rest) {
			continue
		}
		if len(t.Methods) == 0 {
			return f
		}
		for _, m := range t.Methods {
			if strings.EqualFold(m, r.Method) {
				return f
			}
		}
	}
	return nil
}

// routeMatches matches an ASP.NET-style route template (literals, {x},
// {x?}, {x:constraint}) against a path without prefix.
func routeMatches(template, path string) bool {
	ts := strings.Split(strings.Trim(template, "/"), "/")
	var ps []string
	if path != "" {
		ps = strings.Split(path, "/")
	}
	for i, seg := range ts {
		param := strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
		optional := param && strings.HasSuffix(seg, "?}")
		if i >= len(ps) {
			return optional && i == len(ts)-1
		}
		if !param && !strings.EqualFold(seg, ps[i]) {
			return false
		}
		if param && ps[i] == "" {
			return false
		}
	}
	return len(ps) == len(ts)
}

func (h *Host) authorized(f Function, r *http.Request) bool {
	level := strings.ToLower(f.Trigger().AuthLevel)
	if level == "anonymous" || h.o.FunctionKey == "" {
		return true
	}
	key := r.URL.Query().Get("code")
	if key == "" {
		key = r.Header.Get("X-Functions-Key")
	}
	return key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(h.o.FunctionKey)) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(marshal(v))
}
