package handlers

import "net/http"

// dashboard answers GET /api/dashboard with Deps.Dashboard when one is
// configured (the operators' page is its own piece of work), else 501.
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	if s.d.Dashboard != nil {
		s.d.Dashboard.ServeHTTP(w, r)
		return
	}
	writeError(w, http.StatusNotImplemented, "the dashboard arrives with the operators' view")
}
