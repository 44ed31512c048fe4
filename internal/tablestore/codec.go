package tablestore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

// How a request becomes entities of the requests table and back: the state
// row (the request as JSON in Body properties, its inline history included)
// and the history rows the oldest entries move to (see the package
// documentation).

// Sizes of the Body properties.
const (
	// partUnits is the size of one Body property in UTF-16 code units
	// (a string property holds at most 64 KiB = 32,768 units).
	partUnits = 30000
	// maxRequestParts bounds the state row (an entity holds at most 1 MiB).
	maxRequestParts = 15
	// maxHistoryParts bounds one history entry.
	maxHistoryParts = 2
)

const (
	stateRowKey   = "state"
	historyPrefix = "h-"
)

func historyRowKey(i int) string { return fmt.Sprintf("%s%06d", historyPrefix, i) }

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
	r.InUTC()
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
