package devhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// waitForHandler polls the handler until it answers anything (as the real
// host's IsWorkerReady does with GET /).
func (h *Host) waitForHandler(ctx context.Context) error {
	deadline := time.Now().Add(h.o.ReadyTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.handler.String()+"/", nil)
		resp, err := h.o.Client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devhost: the handler at %s did not answer within %s", h.handler, h.o.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// invoke POSTs an invocation to the handler. The invocation succeeded when
// the answer is 2xx with a JSON object body (the real host calls
// EnsureSuccessStatusCode and parses the body as HttpScriptInvocationResult).
func (h *Host) invoke(ctx context.Context, function string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.handler.String()+"/"+function, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	id := uuid.NewString()
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", "devhost")
	req.Header.Set("User-Agent", "Azure-Functions-Host/devhost")
	start := h.o.Now()
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("invoking %s: %w", function, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res map[string]json.RawMessage
	switch {
	case resp.StatusCode/100 != 2:
		err = fmt.Errorf("%s answered %d", function, resp.StatusCode)
	case json.Unmarshal(b, &res) != nil || res == nil:
		err = fmt.Errorf("%s answered %d without a JSON object body", function, resp.StatusCode)
	}
	h.log.Info("invocation", "function", function, "invocationId", id, "status", resp.StatusCode,
		"succeeded", err == nil, "durationMs", h.o.Now().Sub(start).Milliseconds())
	return err
}
