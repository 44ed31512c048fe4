package tablestore

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/jitaccess/jitaccess/internal/access"
)

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
