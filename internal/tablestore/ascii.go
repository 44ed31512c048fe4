package tablestore

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// asciiBody is a per-call pipeline policy that sends every request body as
// pure ASCII: non-ASCII characters in the JSON are written as \uXXXX
// escapes (the same JSON values). Azurite (through at least 3.35.0,
// Azure/Azurite#2670) decodes each chunk of a request body on its own, so a
// multi-byte character split across two chunks of a large body is stored
// as U+FFFD; an ASCII body cannot be split inside a character. Azure
// stores the same values either way. In a $batch body only the JSON lines
// change, and the Content-Length of each changed sub-request is corrected.
type asciiBody struct{}

func (asciiBody) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	body := req.Body()
	if body == nil || raw.ContentLength <= 0 {
		return req.Next()
	}
	b, err := io.ReadAll(body)
	if err == nil {
		_, err = body.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, err
	}
	if !hasNonASCII(b) {
		return req.Next()
	}
	ct := raw.Header.Get("Content-Type")
	var out []byte
	if strings.HasPrefix(ct, "multipart/") {
		out = asciiBatch(b)
	} else {
		out = escapeJSON(b)
	}
	if err := req.SetBody(streaming.NopCloser(bytes.NewReader(out)), ct); err != nil {
		return nil, err
	}
	return req.Next()
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// escapeJSON writes every non-ASCII character of JSON text as \uXXXX (a
// surrogate pair beyond the BMP). Outside string literals JSON is ASCII, so
// the result is the same JSON value.
func escapeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/4)
	const hex = "0123456789abcdef"
	esc := func(r rune) {
		out = append(out, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			out = append(out, c)
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			esc(r1)
			esc(r2)
		} else {
			esc(r)
		}
	}
	return out
}

// asciiBatch escapes the JSON lines of a multipart $batch body (the entity
// bodies, one line each: the request lines carry escaped URLs and the
// headers are ASCII) and corrects the Content-Length header of each part
// whose body changed.
func asciiBatch(b []byte) []byte {
	lines := bytes.Split(b, []byte("\r\n"))
	lengthAt := -1
	for i, l := range lines {
		switch {
		case bytes.HasPrefix(l, []byte("--")):
			lengthAt = -1
		case bytes.HasPrefix(bytes.ToLower(l), []byte("content-length:")):
			lengthAt = i
		case len(l) > 0 && l[0] == '{' && hasNonASCII(l):
			lines[i] = escapeJSON(l)
			if lengthAt >= 0 {
				lines[lengthAt] = []byte("Content-Length: " + strconv.Itoa(len(lines[i])))
			}
		}
	}
	return bytes.Join(lines, []byte("\r\n"))
}
