package tablestore

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/jitaccess/jitaccess/internal/fault"
)

// StatusError is what a storage error response becomes: the status and the
// service's error code, nothing else (no URL, no body).
type StatusError struct {
	Status int
	Code   string
}

func (e *StatusError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("table storage answered %d", e.Status)
	}
	return fmt.Sprintf("table storage answered %d %s", e.Status, e.Code)
}

func statusOf(err error) (int, string, bool) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status, se.Code, true
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.RawResponse != nil {
			code = re.RawResponse.Header.Get("x-ms-error-code")
		}
		return re.StatusCode, code, true
	}
	return 0, "", false
}

func isStatus(err error, status int) bool {
	st, _, ok := statusOf(err)
	return ok && st == status
}

func isCode(err error, code string) bool {
	_, c, ok := statusOf(err)
	return ok && c == code
}

// entityMissing reports a 404 for an entity in a table that exists (a
// missing table is a 404 too, with code TableNotFound).
func entityMissing(err error) bool {
	return isStatus(err, http.StatusNotFound) && !isCode(err, string(aztables.TableNotFound))
}

// translate maps a storage error onto the fault kinds, once.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if st, code, ok := statusOf(err); ok {
		return fault.Wrap(kindOfStatus(st, code), op, &StatusError{Status: st, Code: code})
	}
	return fault.Wrap(kindOfTransport(err), op, err)
}

func kindOfStatus(st int, code string) error {
	switch {
	case code == "TableNotFound" || code == "TableBeingDeleted":
		// Tables are (re)created by the store; retrying later helps.
		return fault.ErrTransient
	case st == http.StatusNotFound:
		return fault.ErrNotFound
	case st == http.StatusConflict || st == http.StatusPreconditionFailed:
		return fault.ErrConflict
	case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500:
		return fault.ErrTransient
	}
	return fault.ErrPermanent
}

func kindOfTransport(err error) error {
	var (
		ne  net.Error
		oe  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.As(err, &oe), errors.As(err, &dns),
		errors.As(err, &ne) && ne.Timeout():
		return fault.ErrTransient
	}
	return fault.ErrPermanent
}

// batchResult receives what the SDK leaves out of a transaction's answer: the
// status, ETag and error code of each operation.
type batchResult struct {
	parsed bool
	ops    []batchOp
}

type batchOp struct {
	status int
	etag   string
	code   string
}

// failed returns the first failed operation, if any.
func (b *batchResult) failed() (batchOp, bool) {
	for _, op := range b.ops {
		if op.status >= 400 {
			return op, true
		}
	}
	return batchOp{}, false
}

type batchKey struct{}

func withBatchResult(ctx context.Context, b *batchResult) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// batchCapture is a per-call pipeline policy: for calls whose context carries
// a *batchResult, it reads the multipart answer of the $batch request into
// it and hands the SDK an identical body.
type batchCapture struct{}

func (batchCapture) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	b, ok := req.Raw().Context().Value(batchKey{}).(*batchResult)
	if !ok || err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, rerr
	}
	if resp.StatusCode == http.StatusAccepted {
		b.ops, b.parsed = parseBatch(resp.Header.Get("Content-Type"), body), true
	}
	return resp, nil
}

// parseBatch reads the operation answers of a $batch response:
// multipart/mixed holding one changeset (multipart/mixed) of application/http
// parts.
func parseBatch(contentType string, body []byte) []batchOp {
	var ops []batchOp
	var walk func(ct string, r io.Reader, depth int)
	walk = func(ct string, r io.Reader, depth int) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || depth > 2 {
			return
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p.Header.Get("Content-Type"), p, depth+1)
			}
		}
		if mt != "application/http" {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(r), nil)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		op := batchOp{status: resp.StatusCode, etag: resp.Header.Get("ETag"), code: resp.Header.Get("x-ms-error-code")}
		if op.status >= 400 && op.code == "" {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			op.code = odataErrorCode(b)
		}
		ops = append(ops, op)
	}
	walk(contentType, bytes.NewReader(body), 0)
	return ops
}

func odataErrorCode(b []byte) string {
	var e struct {
		OData struct {
			Code string `json:"code"`
		} `json:"odata.error"`
	}
	if json.Unmarshal(b, &e) == nil {
		return e.OData.Code
	}
	return ""
}
