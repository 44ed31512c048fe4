package tablestore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// Limits of one save.
const (
	// MaxHistoryPerSave: a transaction holds at most 100 operations, one of
	// them the state row.
	MaxHistoryPerSave = 99
	// partUnits is the size of one Body property in UTF-16 code units
	// (a string property holds at most 64 KiB = 32,768 units).
	partUnits = 30000
	// maxRequestParts bounds the state row (an entity holds at most 1 MiB).
	maxRequestParts = 15
	// maxHistoryParts bounds one history entry.
	maxHistoryParts = 2
	// maxTransactionBytes stays under the 4 MiB payload of a transaction.
	maxTransactionBytes = 3 << 20
	// inlineBytes is how large the state row's JSON may grow with its
	// history inline before the oldest inline entries are moved to history
	// rows (4 properties; UTF-8 bytes bound UTF-16 units from above).
	inlineBytes = 4 * partUnits
)

const (
	stateRowKey   = "state"
	historyPrefix = "h-"
)

func historyRowKey(i int) string { return fmt.Sprintf("%s%06d", historyPrefix, i) }

// validKey reports whether s can be a PartitionKey or RowKey. Single quotes
// are refused too (the SDK doubles them in entity bodies).
func validKey(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || strings.ContainsRune(`/\#?'`, r) {
			return false
		}
	}
	return true
}

// lit is an OData string literal.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// meta is what a Version carries besides the ETag: the index entries of the
// version read, so that the next save can maintain the indexes without
// reading anything.
type meta struct {
	ETag string `json:"e"`
	HLen int    `json:"h"`
	// HRows is how many of the HLen history entries are in history rows
	// (the oldest); the rest are inline in the state row.
	HRows int `json:"r,omitempty"`
	// HSig is the signature of the inline entries as stored (histSig), so
	// that a save can tell whether the caller changed them.
	HSig string `json:"s,omitempty"`
	// Gone are superseded index entries (RowKey, ETag) that a save into an
	// in-flight state left for the next save to delete.
	Gone    [][2]string `json:"g,omitempty"`
	Due     string      `json:"d,omitempty"`
	DueETag string      `json:"de,omitempty"`
	Idx     string      `json:"i,omitempty"`
	IdxSig  string      `json:"is,omitempty"`
	IdxETag string      `json:"ie,omitempty"`
}

const versionTag = "t2."

func (m meta) version() string {
	b, _ := json.Marshal(m)
	return versionTag + base64.RawURLEncoding.EncodeToString(b)
}

func parseVersion(v string) (meta, bool) {
	var m meta
	rest, ok := strings.CutPrefix(v, versionTag)
	if !ok {
		return m, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || json.Unmarshal(b, &m) != nil || m.ETag == "" {
		return m, false
	}
	return m, true
}

// dueKey is the due index RowKey: sortable time, then the id.
func dueKey(at time.Time, id string) string {
	return dueTimeKey(at) + "_" + id
}

func dueTimeKey(at time.Time) string { return fmt.Sprintf("%019d", unixNano(at)) }

// maxNanoTime is the latest time whose UnixNano fits an int64 (2262-04-11).
var maxNanoTime = time.Unix(0, math.MaxInt64)

// unixNano is t's UnixNano clamped to [0, MaxInt64]: UnixNano itself is
// undefined past 2262 (it wraps), and a due entry of a grant observed to end
// in, say, 9999 would then sort as due at once and be handed to every sweep.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// indexPK is the one partition of the index table: due entries and state
// entries side by side, so that a save writes its new entries in one
// entity-group transaction and deletes the superseded ones in another.
const indexPK = "idx"

// duePrefix starts every due entry's RowKey ("d" + sortable time + "_" + id).
const duePrefix = "d"

// dueRow is the due index RowKey of a request due at at.
func dueRow(at time.Time, id string) string { return duePrefix + dueKey(at, id) }

// statePrefix is the RowKey prefix of the state index entries of a state
// ("s-active_" + id), "" for final states (which are listed from the
// requests table).
func statePrefix(st access.State) string {
	switch st {
	case access.Pending, access.Active, access.Awaiting, access.Activating, access.Ending:
		return "s-" + string(st) + "_"
	}
	return ""
}

func indexSig(profile, requester string) string {
	b, _ := json.Marshal([]string{profile, requester})
	return string(b)
}

// splitBody cuts s into properties of at most partUnits UTF-16 units.
func splitBody(s string) []string {
	var parts []string
	start, units := 0, 0
	for i, r := range s {
		n := 1
		if r >= 0x10000 {
			n = 2
		}
		if units+n > partUnits {
			parts = append(parts, s[start:i])
			start, units = i, 0
		}
		units += n
	}
	return append(parts, s[start:])
}

func bodyProp(i int) string {
	if i == 0 {
		return "Body"
	}
	return "Body" + strconv.Itoa(i)
}

func putBody(props map[string]any, body string, maxParts int, what string) error {
	parts := splitBody(body)
	if len(parts) > maxParts {
		return fmt.Errorf("%s needs %d properties of %d UTF-16 units, over the limit of %d", what, len(parts), partUnits, maxParts)
	}
	props["BodyParts"] = int32(len(parts))
	for i, p := range parts {
		props[bodyProp(i)] = p
	}
	return nil
}

func getBody(e *aztables.EDMEntity) (string, error) {
	n, ok := e.Properties["BodyParts"].(int32)
	if !ok || n < 1 || n > 64 {
		return "", fault.Problem("row %s has no valid BodyParts", e.RowKey)
	}
	var b strings.Builder
	for i := range int(n) {
		p, ok := e.Properties[bodyProp(i)].(string)
		if !ok {
			return "", fault.Problem("row %s lacks %s", e.RowKey, bodyProp(i))
		}
		b.WriteString(p)
	}
	return b.String(), nil
}

func str(e *aztables.EDMEntity, name string) string {
	s, _ := e.Properties[name].(string)
	return s
}

func decodeEntity(b []byte) (*aztables.EDMEntity, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// metaOf reads the Version bookkeeping of a state row.
func metaOf(e *aztables.EDMEntity, etag string) (meta, error) {
	hl, ok := e.Properties["HistoryLen"].(int32)
	if !ok || hl < 0 {
		return meta{}, fault.Problem("state row has no valid HistoryLen")
	}
	// Rows written before history went inline have no HistoryRows: all
	// their history is in history rows.
	rows := hl
	if v, ok := e.Properties["HistoryRows"]; ok {
		if rows, ok = v.(int32); !ok || rows < 0 || rows > hl {
			return meta{}, fault.Problem("state row has no valid HistoryRows")
		}
	}
	var gone [][2]string
	if g := str(e, "IdxGone"); g != "" {
		if err := json.Unmarshal([]byte(g), &gone); err != nil {
			return meta{}, fault.Problem("state row has no valid IdxGone")
		}
	}
	if etag == "" {
		etag = e.ETag
	}
	return meta{ETag: etag, Gone: gone, HLen: int(hl), HRows: int(rows), HSig: str(e, "HistorySig"), Due: str(e, "DueKey"), DueETag: str(e, "DueETag"),
		Idx: str(e, "Idx"), IdxSig: str(e, "IdxSig"), IdxETag: str(e, "IdxETag")}, nil
}

// decodeState turns a state row into a request without history (list
// items). Its errors describe the row without quoting it (wrap them with
// fault.WrapUnreadable).
func decodeState(e *aztables.EDMEntity, etag string) (*access.Request, error) {
	r, _, err := decodeRow(e, etag)
	if err != nil {
		return nil, err
	}
	r.History = nil
	return r, nil
}

// decodeRow turns a state row into a request whose History holds the inline
// entries only, and returns the Version bookkeeping. Its errors describe the
// row without quoting it (wrap them with fault.WrapUnreadable).
func decodeRow(e *aztables.EDMEntity, etag string) (*access.Request, meta, error) {
	m, err := metaOf(e, etag)
	if err != nil {
		return nil, m, err
	}
	body, err := getBody(e)
	if err != nil {
		return nil, m, err
	}
	var r access.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, m, err
	}
	normalize(&r)
	if len(r.History) != m.HLen-m.HRows {
		return nil, m, fault.Problem("%d inline history entries, the state row says %d", len(r.History), m.HLen-m.HRows)
	}
	r.ID = e.PartitionKey
	r.Version = m.version()
	r.StoredHistory = m.HLen
	return &r, m, nil
}

// pointRead decodes the answer of a point read of the state row of request
// id (history inline only); a row it cannot decode is fault.ErrUnreadable.
func pointRead(op, id string, resp aztables.GetEntityResponse) (*access.Request, meta, error) {
	e, err := decodeEntity(resp.Value)
	if err != nil {
		return nil, meta{}, fault.WrapUnreadable(op, id, err)
	}
	r, m, err := decodeRow(e, string(resp.ETag))
	if err != nil {
		return nil, m, fault.WrapUnreadable(op, id, err)
	}
	return r, m, nil
}

// GetRequest loads a request with one point read of its state row, which
// holds the history inline; only a request whose history outgrew the row
// (or one written before history went inline) also queries its history
// rows.
func (s *Store) GetRequest(ctx context.Context, id string) (*access.Request, error) {
	const op = "get request"
	if !validKey(id) {
		return nil, fault.Wrap(fault.ErrNotFound, op, fmt.Errorf("%q cannot be a request id", id))
	}
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		if entityMissing(err) {
			return nil, fault.Wrap(fault.ErrNotFound, op, fmt.Errorf("request %q", id))
		}
		return nil, s.fail(op, err)
	}
	r, m, err := pointRead(op, id, resp)
	if err != nil {
		return nil, err
	}
	if m.HRows > 0 {
		hist, err := s.historyRows(ctx, id, m.HRows)
		if err != nil {
			return nil, err
		}
		r.History = append(hist, r.History...)
	}
	for i := range r.History {
		r.History[i].At = utc(r.History[i].At)
	}
	return r, nil
}

// historyRows reads the first n history rows of a request (one partition
// range query for up to 1,000 of them).
func (s *Store) historyRows(ctx context.Context, id string, n int) ([]access.HistoryEntry, error) {
	const op = "get request"
	filter := "PartitionKey eq " + lit(id) + " and RowKey ge " + lit(historyPrefix) + " and RowKey lt " + lit(historyRowKey(n+1))
	pager := s.requests.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr(filter)})
	var rows []*aztables.EDMEntity
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return nil, fault.WrapUnreadable(op, id, err)
			}
			if strings.HasPrefix(e.RowKey, historyPrefix) {
				rows = append(rows, e)
			}
		}
	}
	slices.SortFunc(rows, func(a, b *aztables.EDMEntity) int { return strings.Compare(a.RowKey, b.RowKey) })
	if len(rows) < n {
		return nil, fault.WrapUnreadable(op, id, fault.Problem("%d history rows, the state row says %d", len(rows), n))
	}
	hist := make([]access.HistoryEntry, n)
	for i, h := range rows[:n] {
		if h.RowKey != historyRowKey(i+1) {
			return nil, fault.WrapUnreadable(op, id, fault.Problem("history row %s where %s belongs", h.RowKey, historyRowKey(i+1)))
		}
		body, err := getBody(h)
		if err == nil {
			err = json.Unmarshal([]byte(body), &hist[i])
		}
		if err != nil {
			return nil, fault.WrapUnreadable(op, id, err)
		}
	}
	return hist, nil
}

// SaveRequest creates or compare-and-swaps a request and appends its new
// history in one transaction, keeping the indexes beside it.
func (s *Store) SaveRequest(ctx context.Context, r *access.Request) error {
	const op = "save request"
	perm := func(format string, a ...any) error {
		return fault.Wrap(fault.ErrPermanent, op, fmt.Errorf(format, a...))
	}
	if r == nil || !validKey(r.ID) {
		return perm("request without a usable id")
	}
	if r.StoredHistory < 0 || r.StoredHistory > len(r.History) {
		return perm("request %q: StoredHistory %d outside its %d history entries", r.ID, r.StoredHistory, len(r.History))
	}
	newEntries := r.History[r.StoredHistory:]
	if len(newEntries) > MaxHistoryPerSave {
		return perm("request %q: %d new history entries in one save, over the limit of %d", r.ID, len(newEntries), MaxHistoryPerSave)
	}
	var old meta
	if r.Version != "" {
		var ok bool
		if old, ok = parseVersion(r.Version); !ok {
			return fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q: version not issued by this store", r.ID))
		}
		if old.HLen != r.StoredHistory {
			return perm("request %q: StoredHistory %d but the version read holds %d entries", r.ID, r.StoredHistory, old.HLen)
		}
	} else if r.StoredHistory != 0 {
		return perm("request %q: new request with StoredHistory %d", r.ID, r.StoredHistory)
	}

	// Encode everything before touching storage. The history from
	// old.HRows on is inline in the state row; when the row would grow past
	// inlineBytes, the oldest inline entries move to history rows, written
	// in one transaction with the state row.
	for _, h := range newEntries {
		hb, err := json.Marshal(h)
		if err != nil {
			return perm("encode history of %q: %v", r.ID, err)
		}
		if n := len(splitBody(string(hb))); n > maxHistoryParts {
			return perm("a history entry of %s needs %d properties of %d UTF-16 units, over the limit of %d", r.ID, n, partUnits, maxHistoryParts)
		}
	}
	c := *r
	c.Version, c.StoredHistory = "", 0
	c.History = make([]access.HistoryEntry, len(r.History)-old.HRows)
	for i, h := range r.History[old.HRows:] {
		h.At = h.At.UTC()
		c.History[i] = h
	}
	// Stored history is append-only: entries the caller changed since it
	// read them are written as they were stored (read again: a save whose
	// stored entries are unchanged, the usual case, reads nothing).
	if stored := old.HLen - old.HRows; stored > 0 && histSig(c.History[:stored]) != old.HSig {
		was, err := s.storedInline(ctx, r.ID, old)
		if err != nil {
			return err
		}
		copy(c.History, was)
	}
	body, err := json.Marshal(&c)
	if err != nil {
		return perm("encode request %q: %v", r.ID, err)
	}
	type spill struct {
		h    access.HistoryEntry
		body []byte
	}
	var spilled []spill
	if len(body) > inlineBytes {
		size := len(body)
		for len(c.History) > 0 && len(spilled) < MaxHistoryPerSave && size > inlineBytes {
			hb, err := json.Marshal(c.History[0])
			if err != nil {
				return perm("encode history of %q: %v", r.ID, err)
			}
			if len(splitBody(string(hb))) > maxHistoryParts {
				break // cannot happen (new entries are checked above); kept inline rather than refusing the save
			}
			spilled = append(spilled, spill{c.History[0], hb})
			size -= len(hb) + 1
			c.History = c.History[1:]
		}
		if body, err = json.Marshal(&c); err != nil {
			return perm("encode request %q: %v", r.ID, err)
		}
	}
	next := meta{HLen: len(r.History), HRows: old.HRows + len(spilled), Idx: statePrefix(r.State), IdxSig: indexSig(r.Profile, r.Requester)}
	if !r.DueAt.IsZero() {
		next.Due = dueRow(r.DueAt, r.ID)
	}
	if next.Idx == "" {
		next.IdxSig = ""
	}
	stateProps := map[string]any{
		"State": string(r.State), "Profile": r.Profile, "Requester": r.Requester, "Source": string(r.Source),
		"HistoryLen": int32(next.HLen), "HistoryRows": int32(next.HRows),
	}
	if next.HLen > next.HRows {
		next.HSig = histSig(c.History)
		stateProps["HistorySig"] = next.HSig
	}
	if !r.RequestedAt.IsZero() {
		stateProps["RequestedAt"] = aztables.EDMDateTime(r.RequestedAt.UTC())
	}
	if !r.DueAt.IsZero() {
		stateProps["DueAt"] = aztables.EDMDateTime(r.DueAt.UTC())
	}
	if err := putBody(stateProps, string(body), maxRequestParts, "request "+r.ID); err != nil {
		return perm("%v", err)
	}
	var rows []aztables.TransactionAction
	size := len(body)
	for i, sp := range spilled {
		props := map[string]any{"At": aztables.EDMDateTime(sp.h.At), "Type": sp.h.Type}
		if err := putBody(props, string(sp.body), maxHistoryParts, "a history entry of "+r.ID); err != nil {
			return perm("%v", err)
		}
		ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: r.ID, RowKey: historyRowKey(old.HRows + i + 1)}, Properties: props})
		if err != nil {
			return perm("encode history of %q: %v", r.ID, err)
		}
		size += len(ent)
		rows = append(rows, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent})
	}
	if size > maxTransactionBytes {
		return perm("request %q: a save of %d bytes is over the limit of %d", r.ID, size, maxTransactionBytes)
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}

	// 1. New index entries first: an entry may be stale, never missing.
	// Nothing written here is taken back when the transaction fails: the
	// entry may be the one the current version needs (written again by us
	// with a new ETag), and a stale entry is harmless. Both entries are in
	// the index partition: one round trip for the two.
	var ups []indexUpsert
	if next.Due != "" {
		if next.Due == old.Due {
			next.DueETag = old.DueETag
		} else {
			ups = append(ups, indexUpsert{next.Due, map[string]any{"RequestID": r.ID, "DueAt": aztables.EDMDateTime(r.DueAt.UTC())}, &next.DueETag})
		}
	}
	if next.Idx != "" {
		if next.Idx == old.Idx && next.IdxSig == old.IdxSig {
			next.IdxETag = old.IdxETag
		} else {
			ups = append(ups, indexUpsert{next.Idx + r.ID, map[string]any{"Profile": r.Profile, "Requester": r.Requester}, &next.IdxETag})
		}
	}
	if err := s.upsertIndex(ctx, ups); err != nil {
		return s.fail(op, err)
	}

	// Superseded entries: deleted after the write (step 3) — or, when the
	// request enters an in-flight state (intent recorded before a Graph
	// call, always followed by a save of the result), left for that next
	// save to delete with its own, one round trip less. Until then they are
	// stale entries, which readers tolerate: the state row no longer names
	// them, and an in-flight request's DueAt is in the future.
	var gone []indexRow
	for _, g := range old.Gone {
		if g[0] != next.Due && g[0] != next.Idx+r.ID {
			gone = append(gone, indexRow{g[0], g[1]})
		}
	}
	if old.Due != "" && old.Due != next.Due {
		gone = append(gone, indexRow{old.Due, old.DueETag})
	}
	if old.Idx != "" && old.Idx != next.Idx {
		gone = append(gone, indexRow{old.Idx + r.ID, old.IdxETag})
	}
	if inFlight(r.State) && len(gone) <= maxDeferredIndex {
		for _, g := range gone {
			if g.etag != "" {
				next.Gone = append(next.Gone, [2]string{g.rk, g.etag})
			}
		}
		gone = nil
		if len(next.Gone) > 0 {
			b, _ := json.Marshal(next.Gone)
			stateProps["IdxGone"] = string(b)
		}
	}

	// 2. State and history together.
	for k, v := range map[string]string{"DueKey": next.Due, "DueETag": next.DueETag, "Idx": next.Idx, "IdxSig": next.IdxSig, "IdxETag": next.IdxETag} {
		if v != "" {
			stateProps[k] = v
		}
	}
	stateEnt, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: r.ID, RowKey: stateRowKey}, Properties: stateProps})
	if err != nil {
		return perm("encode request %q: %v", r.ID, err)
	}
	etag, err := s.writeState(ctx, r.ID, stateEnt, old.ETag, rows)
	if err != nil {
		return err
	}
	next.ETag = etag

	// 3. Old index entries last, only if nobody wrote them again since.
	s.deleteIndex(context.WithoutCancel(ctx), gone...)

	r.Version = next.version()
	r.StoredHistory = len(r.History)
	return nil
}

// histSig is a signature of history entries (times in UTC).
func histSig(h []access.HistoryEntry) string {
	b, _ := json.Marshal(h)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// storedInline reads the inline history entries of the version read (a
// save whose caller changed them writes them back as stored).
func (s *Store) storedInline(ctx context.Context, id string, old meta) ([]access.HistoryEntry, error) {
	const op = "save request"
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		if entityMissing(err) {
			return nil, fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q vanished", id))
		}
		return nil, s.fail(op, err)
	}
	if string(resp.ETag) != old.ETag {
		return nil, fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q changed since it was read", id))
	}
	r, _, err := pointRead(op, id, resp)
	if err != nil {
		return nil, err
	}
	return r.History, nil
}

// maxDeferredIndex bounds the superseded index entries a request carries
// to its next save (in-flight saves that retry move the due entry each
// time); past it they are deleted at once.
const maxDeferredIndex = 8

// inFlight: states whose save records intent before a Graph call; the save
// of the result follows.
func inFlight(st access.State) bool { return st == access.Activating || st == access.Ending }

// writeState creates (etag "") or compare-and-swaps the state row and
// inserts the history rows given: one single-entity write when there are
// none (the usual case), else one entity-group transaction. It returns the
// state row's new ETag.
func (s *Store) writeState(ctx context.Context, id string, stateEnt []byte, etag string, rows []aztables.TransactionAction) (string, error) {
	const op = "save request"
	if len(rows) > 0 {
		actions := make([]aztables.TransactionAction, 0, 1+len(rows))
		if etag == "" {
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: stateEnt})
		} else {
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateReplace, Entity: stateEnt, IfMatch: to.Ptr(azcore.ETag(etag))})
		}
		return s.submit(ctx, id, append(actions, rows...))
	}
	var newETag azcore.ETag
	var err error
	if etag == "" {
		var resp aztables.AddEntityResponse
		if resp, err = s.requests.AddEntity(ctx, stateEnt, nil); err == nil {
			newETag = resp.ETag
		}
	} else {
		var resp aztables.UpdateEntityResponse
		if resp, err = s.requests.UpdateEntity(ctx, stateEnt, &aztables.UpdateEntityOptions{IfMatch: to.Ptr(azcore.ETag(etag)), UpdateMode: aztables.UpdateModeReplace}); err == nil {
			newETag = resp.ETag
		}
	}
	if err != nil {
		if entityMissing(err) {
			// The request vanished under a compare-and-swap: the version is stale.
			return "", fault.Wrap(fault.ErrConflict, op, fmt.Errorf("request %q: %w", id, err))
		}
		return "", s.fail(op, fmt.Errorf("request %q: %w", id, err))
	}
	if newETag != "" {
		return string(newETag), nil
	}
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(op, err)
	}
	return string(resp.ETag), nil
}

// submit runs the transaction and returns the state row's new ETag.
func (s *Store) submit(ctx context.Context, id string, actions []aztables.TransactionAction) (string, error) {
	const op = "save request"
	res := &batchResult{}
	_, err := s.requests.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
	if bad, ok := res.failed(); ok {
		if bad.code == string(aztables.TableNotFound) {
			s.ready.Store(false)
		}
		kind := kindOfStatus(bad.status, bad.code)
		if bad.status == http.StatusNotFound && kind == fault.ErrNotFound {
			// The request vanished under a compare-and-swap: the version is stale.
			kind = fault.ErrConflict
		}
		return "", fault.Wrap(kind, op, fmt.Errorf("request %q: %w", id, &StatusError{Status: bad.status, Code: bad.code}))
	}
	if err != nil {
		if res.parsed {
			// 202 without a readable failure: do not guess.
			return "", fault.Wrap(fault.ErrTransient, op, fmt.Errorf("request %q: unreadable transaction answer", id))
		}
		return "", s.fail(op, err)
	}
	if len(res.ops) > 0 && res.ops[0].etag != "" {
		return res.ops[0].etag, nil
	}
	// The service did not report the ETag: read it.
	resp, err := s.requests.GetEntity(ctx, id, stateRowKey, nil)
	if err != nil {
		return "", s.fail(op, err)
	}
	return string(resp.ETag), nil
}

// indexRow is an index entry (RowKey in the index partition) with the ETag
// it had when it was written.
type indexRow struct{ rk, etag string }

// indexUpsert is an index entry to write; its new ETag goes to *etag.
type indexUpsert struct {
	rk    string
	props map[string]any
	etag  *string
}

// upsertIndex writes index entries: one upsert, or an entity-group
// transaction of upserts (one round trip either way).
func (s *Store) upsertIndex(ctx context.Context, ups []indexUpsert) error {
	if len(ups) == 0 {
		return nil
	}
	ents := make([][]byte, len(ups))
	for i, u := range ups {
		ent, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: indexPK, RowKey: u.rk}, Properties: u.props})
		if err != nil {
			return err
		}
		ents[i] = ent
	}
	if len(ups) == 1 {
		resp, err := s.index.UpsertEntity(ctx, ents[0], &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
		if err != nil {
			return err
		}
		*ups[0].etag = string(resp.ETag)
		return nil
	}
	actions := make([]aztables.TransactionAction, len(ups))
	for i := range ups {
		actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ents[i]}
	}
	res := &batchResult{}
	_, err := s.index.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
	if bad, ok := res.failed(); ok {
		return &StatusError{Status: bad.status, Code: bad.code}
	}
	if err != nil {
		return err
	}
	for i, u := range ups {
		if i < len(res.ops) {
			*u.etag = res.ops[i].etag // "" if not reported: the entry is then never deleted by a save (stale at worst)
		}
	}
	return nil
}

// deleteIndex deletes index entries if they still have the ETag given (one
// round trip for several, in a transaction); any failure leaves a stale
// entry, which readers tolerate and clean up.
func (s *Store) deleteIndex(ctx context.Context, rows ...indexRow) {
	var keep []indexRow
	for _, row := range rows {
		if row.etag != "" {
			keep = append(keep, row)
		}
	}
	if len(keep) > 1 {
		actions := make([]aztables.TransactionAction, len(keep))
		for i, row := range keep {
			ent, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: indexPK, RowKey: row.rk}})
			actions[i] = aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: ent, IfMatch: to.Ptr(azcore.ETag(row.etag))}
		}
		res := &batchResult{}
		_, err := s.index.SubmitTransaction(withBatchResult(ctx, res), actions, nil)
		if _, failed := res.failed(); !failed && err == nil {
			return
		}
		// One of them changed (or vanished) meanwhile: the rest one by one.
	}
	for _, row := range keep {
		_, _ = s.index.DeleteEntity(ctx, indexPK, row.rk, &aztables.DeleteEntityOptions{IfMatch: to.Ptr(azcore.ETag(row.etag))})
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// normalize puts every time of a decoded request in UTC.
func normalize(r *access.Request) {
	r.RequestedAt, r.ActivatedAt, r.EndsAt, r.EndedAt, r.DueAt =
		utc(r.RequestedAt), utc(r.ActivatedAt), utc(r.EndsAt), utc(r.EndedAt), utc(r.DueAt)
	for i := range r.Approvals {
		r.Approvals[i].At = utc(r.Approvals[i].At)
	}
	if r.Work != nil {
		r.Work.Since = utc(r.Work.Since)
	}
	for i := range r.Parked {
		r.Parked[i].Received = utc(r.Parked[i].Received)
		r.Parked[i].Event.Time = utc(r.Parked[i].Event.Time)
	}
}
