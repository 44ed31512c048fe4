package graphsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The /groups endpoints: the group and its members.

func (s *Sim) getGroup(w http.ResponseWriter, r *http.Request, key string) {
	var g *Group
	var out map[string]any
	s.locked(func() {
		g = s.t.groups[norm(key)]
		if g != nil {
			out = map[string]any{
				"@odata.context":  "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
				"id":              g.ID,
				"displayName":     g.DisplayName,
				"securityEnabled": true,
				"mailEnabled":     false,
			}
		}
	})
	if g == nil {
		notFound(w, r, key)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) listMembers(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	size := s.opts.PageSize
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			writeError(w, r, http.StatusBadRequest, "Request_UnsupportedQuery", "Invalid page size specified: '"+t+"'. Must be between 1 and 999 inclusive.", 0)
			return
		}
		size = n
	}
	after := q.Get("$skiptoken")
	var g *Group
	var page []map[string]any
	more := false
	s.locked(func() {
		g = s.t.groups[norm(key)]
		if g != nil {
			for _, m := range s.readView().sortedMembers(g.ID) {
				if after != "" && m <= after {
					continue
				}
				if len(page) == size {
					more = true
					break
				}
				page = append(page, map[string]any{"@odata.type": s.t.objectType(m), "id": m})
			}
		}
	})
	if g == nil {
		notFound(w, r, key)
		return
	}
	if page == nil {
		page = []map[string]any{}
	}
	out := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id)",
		"value":          page,
	}
	if more {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		nq := url.Values{}
		if sel := q.Get("$select"); sel != "" {
			nq.Set("$select", sel)
		}
		nq.Set("$top", strconv.Itoa(size))
		nq.Set("$skiptoken", page[len(page)-1]["id"].(string))
		out["@odata.nextLink"] = scheme + "://" + r.Host + BasePath + "/groups/" + g.ID + "/members?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

// refID extracts the object id from "@odata.id" (…/directoryObjects/{id},
// …/users/{id} or …/groups/{id}).
func refID(body []byte) (string, error) {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return "", err
	}
	v, _ := in["@odata.id"].(string)
	if v == "" {
		return "", errors.New("missing @odata.id")
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", err
	}
	p := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(p) < 2 {
		return "", errors.New("bad @odata.id")
	}
	switch p[len(p)-2] {
	case "directoryObjects", "users", "groups":
	default:
		return "", errors.New("bad @odata.id")
	}
	return p[len(p)-1], nil
}

func (s *Sim) addMemberRef(w http.ResponseWriter, r *http.Request, key string, body []byte) {
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", "Empty Payload. JSON content expected.", 0)
		return
	}
	id, err := refID(body)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", MsgInvalidPayload, 0)
		return
	}
	var g *Group
	var typ string
	var exists bool
	s.locked(func() {
		g = s.t.groups[norm(key)]
		typ = s.t.objectType(norm(id))
		exists = g != nil && s.t.members[g.ID][norm(id)]
		if g != nil && typ != "" && !exists {
			now := s.opts.Now().UTC()
			s.t.members[g.ID][norm(id)] = true
			s.logMember(now, g.ID, norm(id), false)
			s.auditMembership(now, true, g.ID, norm(id), callerOf(r))
		}
	})
	switch {
	case g == nil:
		notFound(w, r, key)
	case typ == "":
		notFound(w, r, id)
	case exists:
		writeError(w, r, http.StatusBadRequest, "Request_BadRequest", MsgAlreadyExists, 0)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Sim) removeMemberRef(w http.ResponseWriter, r *http.Request, key, member string) {
	var g *Group
	var was bool
	s.locked(func() {
		g = s.t.groups[norm(key)]
		was = g != nil && s.t.members[g.ID][norm(member)]
		if was {
			now := s.opts.Now().UTC()
			delete(s.t.members[g.ID], norm(member))
			s.logMember(now, g.ID, norm(member), true)
			s.auditMembership(now, false, g.ID, norm(member), callerOf(r))
		}
	})
	switch {
	case g == nil:
		notFound(w, r, key)
	case !was:
		writeError(w, r, http.StatusNotFound, "Request_ResourceNotFound", MsgRemovedNotExist, 0)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
