// Package bench holds the benchmarks of BENCHMARKS.md (issue 7): Graph calls
// and storage round trips per grant, revocation lag, handler cost, cold
// start, memory and sweep scaling. Everything is in *_test.go files as
// Benchmark functions, so a plain `go test ./...` runs none of it; `make
// bench` runs them all.
package bench
