package handlers

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// HealthTimeout bounds each dependency check of /api/health.
const HealthTimeout = 5 * time.Second

type healthView struct {
	Status  string `json:"status"`
	Storage string `json:"storage"`
	Graph   string `json:"graph"`
}

// health answers GET /api/health: 200 when the store answers, 503 when it
// does not. Graph is checked when configured and reported, not required.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
	defer cancel()
	v := healthView{Status: "ok", Storage: "ok", Graph: "not checked"}
	var wg sync.WaitGroup
	if s.d.Graph != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.d.Graph.Ping(ctx); err != nil {
				v.Graph = "unavailable"
				s.log.WarnContext(ctx, "health: graph unavailable", "errorKind", errorKind(err))
			} else {
				v.Graph = "ok"
			}
		}()
	}
	storageOK := true
	if s.d.Store == nil {
		storageOK, v.Storage = false, "not configured"
	} else if err := s.d.Store.Ping(ctx); err != nil {
		storageOK, v.Storage = false, "unavailable"
		s.log.WarnContext(ctx, "health: storage unavailable", "errorKind", errorKind(err))
	}
	wg.Wait()
	if !storageOK {
		v.Status = "unavailable"
		writeJSON(w, http.StatusServiceUnavailable, v)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
