package tablestore

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEscapeJSON(t *testing.T) {
	for _, s := range []string{"plain", "é", "😀 and 𐐷", strings.Repeat("ü€😀", 1000), "\u2028 \u00a0 \"quoted\" \\", "\xff broken"} {
		in, _ := json.Marshal(map[string]string{"Body": s, "k": "v"})
		out := escapeJSON(in)
		if hasNonASCII(out) {
			t.Fatalf("%q: output not ASCII", s)
		}
		var a, b map[string]string
		if err := json.Unmarshal(in, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%q: escaped JSON invalid: %v", s, err)
		}
		if a["Body"] != b["Body"] || b["k"] != "v" {
			t.Fatalf("%q: value changed: %q", s, b["Body"])
		}
	}
}

func TestASCIIBatch(t *testing.T) {
	body := "--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n--changeset_1\r\n" +
		"Content-Type: application/http\r\n\r\nPOST http://h/t HTTP/1.1\r\nContent-Length: 14\r\nContent-Type: application/json\r\n\r\n" +
		`{"Body":"éé"}` + "\r\n--changeset_1--\r\n--batch_1--\r\n"
	out := string(asciiBatch([]byte(body)))
	want := `{"Body":"\u00e9\u00e9"}`
	if !strings.Contains(out, "Content-Length: "+itoa(len(want))+"\r\n") || !strings.Contains(out, want+"\r\n") || hasNonASCII([]byte(out)) {
		t.Fatalf("batch body:\n%s", out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
