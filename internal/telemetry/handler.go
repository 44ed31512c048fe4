package telemetry

import (
	"bytes"
	"context"
	"log/slog"
)

// Handler is a slog.Handler that adds the invocation's fields to every record
// logged with an invocation's context (invocationId, function, requestId once
// known — a field the record sets itself wins), hands the record to the
// wrapped handler (JSON to stdout), and keeps a copy of the line, formatted
// the same way, for the answer's Logs.
//
// Outside an invocation (start-up, shutdown) records pass through unchanged.
type Handler struct {
	inner slog.Handler // base with ops applied
	base  slog.Handler
	// ops replays WithAttrs/WithGroup on the formatter of the Logs copy, and
	// on base when a group is open (the invocation's fields stay top-level).
	ops     []func(slog.Handler) slog.Handler
	grouped bool
}

// NewHandler wraps inner (a JSON handler writing to stdout). A *Handler is
// returned as it is.
func NewHandler(inner slog.Handler) *Handler {
	if h, ok := inner.(*Handler); ok {
		return h
	}
	return &Handler{inner: inner, base: inner}
}

// Wrap returns l logging through a Handler (l itself when it already does).
func Wrap(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(NewHandler(l.Handler()))
}

// Enabled reports what the wrapped handler reports.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// WithAttrs returns a handler whose records carry as.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(as), base: h.base, grouped: h.grouped,
		ops: append(h.ops[:len(h.ops):len(h.ops)], func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })}
}

// WithGroup returns a handler that opens group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name), base: h.base, grouped: true,
		ops: append(h.ops[:len(h.ops):len(h.ops)], func(x slog.Handler) slog.Handler { return x.WithGroup(name) })}
}

// chain builds base → first → ops (the handler as configured, with first
// applied before any group opens).
func (h *Handler) chain(base slog.Handler, first []slog.Attr) slog.Handler {
	if len(first) > 0 {
		base = base.WithAttrs(first)
	}
	for _, op := range h.ops {
		base = op(base)
	}
	return base
}

// FieldError is the attribute that carries an error's text. Error texts come
// from SDKs and services and may quote what they were sent: they stay on
// stdout, and the answer's Logs (the copy the host links to the invocation)
// keep only the error's kind.
const FieldError = "error"

func dropErrorText(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == FieldError {
		return slog.Attr{}
	}
	return a
}

// Handle adds the invocation's fields, writes the record and collects a copy.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	s := FromContext(ctx)
	if s == nil {
		return h.inner.Handle(ctx, r)
	}
	var hasInv, hasFn, hasReq bool
	var reqID, state string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case FieldInvocationID:
			hasInv = true
		case FieldFunction:
			hasFn = true
		case FieldRequestID:
			hasReq = true
			reqID = a.Value.String()
		case FieldState:
			state = a.Value.String()
		}
		return true
	})
	r = r.Clone()
	var add []slog.Attr
	if !hasInv && s.invocationID != "" {
		add = append(add, slog.String(FieldInvocationID, s.invocationID))
	}
	if !hasFn && s.function != "" {
		add = append(add, slog.String(FieldFunction, s.function))
	}
	if !hasReq {
		if id := s.RequestID(); id != "" {
			add = append(add, slog.String(FieldRequestID, id))
			reqID = id
		}
	}
	if reqID != "" && state != "" {
		s.noteState(reqID, state)
	}
	out := h.inner
	var first []slog.Attr
	if h.grouped {
		// Inside a group the record's attributes are the group's: put the
		// invocation's fields before the groups instead.
		first = add
		if len(add) > 0 {
			out = h.chain(h.base, first)
		}
	} else {
		r.AddAttrs(add...)
	}
	err := out.Handle(ctx, r)
	if s.logs != nil {
		var buf bytes.Buffer
		f := h.chain(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropErrorText}), first)
		if f.Handle(ctx, r) == nil {
			s.logs.add(string(bytes.TrimRight(buf.Bytes(), "\n")))
		}
	}
	return err
}
