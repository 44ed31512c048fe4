package access

import (
	"testing"
	"time"
)

// Every field that remembers something keeps the ledger row: deleting it
// would forget a member jitaccess added, a claim, pre-existing access, or a
// recent end (an add racing it would then add after it, or a sweep revoke
// sessions twice).
func TestLedgerEmpty(t *testing.T) {
	cases := []struct {
		name string
		l    Ledger
		want bool
	}{
		{"nothing", Ledger{GroupID: "g", UserID: "u", Version: "v"}, true},
		{"last write alone", Ledger{LastWrite: time.Unix(1, 0)}, true},
		{"a grant", Ledger{Grants: []string{"r1"}}, false},
		{"added by jitaccess", Ledger{Added: true}, false},
		{"a claim", Ledger{ClaimedBy: "r1", ClaimOp: OpAdd}, false},
		{"pre-existing", Ledger{PreExisting: true}, false},
		{"released", Ledger{Released: []string{"r1"}}, false},
		{"ended", Ledger{Ended: []string{"r1"}}, false},
		{"revoked without a saved end", Ledger{Revoked: []string{"r1"}}, false},
	}
	for _, c := range cases {
		if got := c.l.Empty(); got != c.want {
			t.Errorf("%s: Empty() = %v, want %v", c.name, got, c.want)
		}
	}
}
