package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// The /users endpoints.

func userJSON(u *User, sel map[string]bool) map[string]any {
	ut := "Member"
	if u.Guest {
		ut = "Guest"
	}
	m := map[string]any{
		"id":                u.ID,
		"userPrincipalName": u.UPN,
		"accountEnabled":    u.Enabled,
		"userType":          ut,
	}
	if len(sel) == 0 || sel["displayname"] {
		m["displayName"] = u.DisplayName
	}
	if sel["mail"] {
		m["mail"] = nil
	}
	return m
}

func selectSet(r *http.Request) (map[string]bool, []string) {
	v := r.URL.Query().Get("$select")
	if v == "" {
		return nil, nil
	}
	set := map[string]bool{}
	var names []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f != "" {
			set[strings.ToLower(f)] = true
			names = append(names, f)
		}
	}
	return set, names
}

func (s *Sim) getUser(w http.ResponseWriter, r *http.Request, key string) {
	set, names := selectSet(r)
	var u *User
	var out map[string]any
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			out = userJSON(u, set)
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	ctx := "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	if len(names) > 0 {
		ctx = "https://graph.microsoft.com/v1.0/$metadata#users(" + strings.Join(names, ",") + ")/$entity"
	}
	out["@odata.context"] = ctx
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) checkMemberGroups(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	var in struct {
		GroupIDs []string `json:"groupIds"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", "Empty Payload. JSON content expected.", 0)
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	if len(in.GroupIDs) > 20 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest",
			"Invalid value specified for property 'groupIds' of resource 'User'. The number of group ids must be at most 20.", 0)
		return
	}
	var u *User
	var hits []string
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			tg := s.readView().transitiveGroups(u.ID)
			seen := map[string]bool{}
			for _, g := range in.GroupIDs {
				k := norm(g)
				if tg[k] && !seen[k] {
					seen[k] = true
					hits = append(hits, k)
				}
			}
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	if hits == nil {
		hits = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
		"value":          hits,
	})
}

func (s *Sim) revoke(w http.ResponseWriter, r *http.Request, key string) {
	var u *User
	s.locked(func() {
		u = s.t.resolveUser(key)
		if u != nil {
			s.t.revokes[u.ID]++
		}
	})
	if u == nil {
		notFound(w, r, key)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
		"value":          true,
	})
}
