# jitaccess — the two commands first:
#   make run    the sandbox: embedded store, simulated tenant, local Functions host stand-in
#   make test   every test (unit, Azurite store suite, end-to-end through the built binary)

GO        ?= go
# msgraph-sdk-go is large: bound parallelism and memory so builds fit small machines.
export GOMEMLIMIT ?= 6GiB
GOFLAGS_BUILD := -p 2 -trimpath
DIST      := dist
PROFILES  ?= $(wildcard profiles.json)
FUNCTIONS := $(notdir $(wildcard functions/*))
FUZZTIME  ?= 20s

.PHONY: run test build clean vet fmt-check unit e2e fuzz bench tools

build: ## dist/: host.json, function folders, profiles.json (if given), linux/amd64 jitaccess
	rm -rf $(DIST) && mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(GOFLAGS_BUILD) -ldflags "-s -w" -o $(DIST)/jitaccess .
	chmod 0755 $(DIST)/jitaccess
	cp host.json $(DIST)/
	for f in $(FUNCTIONS); do mkdir -p $(DIST)/$$f && cp functions/$$f/function.json $(DIST)/$$f/; done
	if [ -n "$(PROFILES)" ]; then cp "$(PROFILES)" $(DIST)/profiles.json; fi
	@echo "built $(DIST)/ — zip its contents to deploy"

run: ## the local sandbox (Ctrl-C to stop): a build with -tags sandbox (the deployed one has no simulator)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -tags sandbox -o .tools/jitaccess-sandbox . && .tools/jitaccess-sandbox sandbox

vet:
	$(GO) vet ./...
	$(GO) vet -tags sandbox .

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet build ## everything, with the race detector
	$(GO) test -race -p 2 -count=1 -timeout 30m ./...

# -fuzzminimizetime: the default (60 s per new input) would spend a short FUZZTIME minimizing
# the large host-payload seeds instead of fuzzing.
fuzz: ## each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$pkg; \
	  done; done

# make bench: every figure of BENCHMARKS.md (Azurite as for `make test`), with
# the sweep and listing scaling at 1k vs 100k ended requests (JIT_BENCH_ENDED).
BENCH_OUT ?= .tools/bench.txt
bench: build ## all figures of BENCHMARKS.md; prints the table (raw output in $(BENCH_OUT))
	@mkdir -p $(dir $(BENCH_OUT))
	{ \
	JIT_BENCH_ENDED=$${JIT_BENCH_ENDED:-1000,100000} $(GO) test -run '^$$' -bench . -benchmem -benchtime 20x -timeout 30m \
	  $$($(GO) list ./... | grep -v '/bench$$') && \
	JIT_BENCH_ENDED=$${JIT_BENCH_ENDED:-1000,100000} JIT_BENCH_BINARY=$(CURDIR)/$(DIST)/jitaccess $(GO) test -run '^$$' \
	  -bench '^(BenchmarkGrantLifecycle|BenchmarkRevocationLag.*|BenchmarkColdStart|BenchmarkMemoryLoaded|BenchmarkSweepScaling)$$' \
	  -benchtime 1x -v -timeout 30m ./bench && \
	$(GO) test -run '^$$' -bench '^(BenchmarkHandlerCost|BenchmarkThroughputVsStoreFloor)$$' -benchtime 2000x -timeout 30m ./bench; \
	} 2>&1 | tee $(BENCH_OUT)
	@echo; awk -f bench/table.awk $(BENCH_OUT)
	@! grep -q '^FAIL\|^--- FAIL\|^panic' $(BENCH_OUT)

.PHONY: bench-profile bench-sweep
bench-profile: ## CPU profile of POST /AccessRequests (handler, broker, Graph client, memstore): top 10
	@mkdir -p .tools
	$(GO) test -run '^$$' -bench '^BenchmarkAccessRequestsHotPath$$' -benchtime 5000x \
	  -cpuprofile .tools/cpu.out -o .tools/bench.test ./bench
	$(GO) tool pprof -top -nodecount=10 .tools/bench.test .tools/cpu.out
	$(GO) tool pprof -top -cum -nodecount=25 .tools/bench.test .tools/cpu.out

.PHONY: bench-profile-nograph
bench-profile-nograph: ## CPU profile of POST /AccessRequests with an in-memory directory (the handler's own work)
	@mkdir -p .tools
	$(GO) test -run '^$$' -bench '^BenchmarkAccessRequestsNoGraph$$' -benchtime 20000x \
	  -cpuprofile .tools/cpu-nograph.out -o .tools/bench.test ./bench
	$(GO) tool pprof -top -cum -nodecount=30 .tools/bench.test .tools/cpu-nograph.out

bench-sweep: ## sweep cost with 100 due grants among 1k vs 100k ended ones (Azurite; about 6 minutes)
	JIT_BENCH_ENDED=$${JIT_BENCH_ENDED:-1000,100000} $(GO) test -run '^$$' -bench '^BenchmarkSweepScaling$$' -benchtime 1x -v -timeout 60m ./bench

.PHONY: bench-burst
# Not in `make bench`: at the default 2,000 grants each driver takes the quota's 200 s.
bench-burst: ## Issue 14: JIT_BENCH_BURST grants (2,000) ending at once under Graph's documented write quota (memstore; about 8 minutes)
	@mkdir -p .tools
	@echo "BenchmarkBurstOfEnds (raw output in .tools/bench-burst.txt)"
	@JIT_BENCH_BURST=$${JIT_BENCH_BURST:-2000} $(GO) test -run '^$$' -bench '^BenchmarkBurstOfEnds$$' -benchtime 1x -v -timeout 60m \
	  ./bench > .tools/bench-burst.txt 2>&1; st=$$?; \
	  grep -E 'BenchmarkBurstOfEnds|burst_bench_test|FAIL|^ok|panic' .tools/bench-burst.txt; exit $$st

.PHONY: bench-listing
bench-listing: ## listing cost of open requests at 1k vs 100k ended ones (Azurite; see BENCHMARKS.md)
	JIT_BENCH_ENDED=$${JIT_BENCH_ENDED:-1000,100000} $(GO) test -run '^$$' -bench '^BenchmarkListActive$$' -benchtime 50x -v -timeout 60m ./internal/tablestore

clean:
	rm -rf $(DIST) .tools/jitaccess-sandbox

.PHONY: load
# 2,000 by default: in-memory Azurite scans a table for every query, so its cost per operation
# grows with what is stored and 10,000 takes hours (RELIABILITY.md); set
# JIT_TEST_TABLES_CONNECTION_STRING to a real storage account for larger runs.
LOAD_LIFECYCLES ?= 2000
LOAD_CONCURRENCY ?= 16
load: ## the load run of RELIABILITY.md: LOAD_LIFECYCLES whole grants through the built binary (Azurite, Graph simulator)
	@mkdir -p .tools
	@JIT_LOAD_LIFECYCLES=$(LOAD_LIFECYCLES) JIT_LOAD_CONCURRENCY=$(LOAD_CONCURRENCY) \
	  $(GO) test -count=1 -run '^TestLoadLifecycles$$' -v -timeout 60m ./e2e > .tools/load.txt 2>&1; st=$$?; \
	  grep -E 'load:|phase|FAIL|^ok|panic' .tools/load.txt; exit $$st

.PHONY: package package-check
package: build ## build/jitaccess.zip, what azd deploys: dist/ checked, jitaccess entry 0755 (infra/pkgzip)
	$(GO) run ./infra/pkgzip -dist $(DIST) -out build/jitaccess.zip

package-check: ## the package tests: builds the zip as the azd hooks do, asserts its layout and modes
	$(GO) test -count=1 -run 'TestPackage' ./infra/ ./infra/pkgzip/

.PHONY: lint-infra
lint-infra: ## compile and lint infra/*.bicep with the Bicep CLI when present; says plainly when it is not (LINT_INFRA_REQUIRED=1 makes that an error)
	@infra/scripts/lint-infra.sh
