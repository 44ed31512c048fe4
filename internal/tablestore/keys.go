package tablestore

import "strings"

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
