package app

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/jitaccess/jitaccess/internal/telemetry"
)

// NewLogger logs JSON to w (stdout: the host records stderr as errors) at
// level (debug, info, warn, error); lines logged within an invocation carry
// its ids and go back in its answer's Logs (internal/telemetry).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(telemetry.NewHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// StartFailure reports a start that cannot go on: on log as JSON for the
// log pipeline, and on stderr for a person and for the host's error log. It
// returns the exit code, 1.
func StartFailure(log *slog.Logger, stderr io.Writer, err error) int {
	log.Error("start failed", "error", err.Error())
	fmt.Fprintf(stderr, "jitaccess: cannot start: %v\n", err)
	return 1
}
