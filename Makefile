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

run: ## the local sandbox (Ctrl-C to stop)
	$(GO) build $(GOFLAGS_BUILD) -o .tools/jitaccess-sandbox . && .tools/jitaccess-sandbox sandbox

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: fmt-check vet build ## everything, with the race detector
	$(GO) test -race -p 2 -count=1 -timeout 30m ./...

fuzz: ## each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -p 1 ./...

.PHONY: bench-listing
bench-listing: ## listing cost of open requests at 1k vs 100k ended ones (Azurite; see BENCHMARKS.md)
	JIT_BENCH_ENDED=$${JIT_BENCH_ENDED:-1000,100000} $(GO) test -run '^$$' -bench '^BenchmarkListActive$$' -benchtime 50x -v -timeout 60m ./internal/tablestore

clean:
	rm -rf $(DIST) .tools/jitaccess-sandbox
