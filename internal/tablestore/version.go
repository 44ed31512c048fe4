package tablestore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/access"
	"github.com/jitaccess/jitaccess/internal/fault"
)

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

// histSig is a signature of history entries (times in UTC).
func histSig(h []access.HistoryEntry) string {
	b, _ := json.Marshal(h)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
