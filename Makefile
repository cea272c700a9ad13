# tocsin: `make test` is what CI runs (.ci/run) and what README.md promises works on a fresh machine.
# It installs what the tests need (Go modules) and checks formatting, vet and the race detector.

GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test deps test-deps fmt-check vet bench bench-race jepsen demo fuzz

all: build

build:
	$(GO) build -o bin/tocsin ./cmd/tocsin

deps:
	$(GO) mod download
	$(GO) mod verify

# Debian packages some tests need (Flask, Chromium, PostgreSQL, Redis, nginx), installed when missing.
test-deps:
	bash scripts/test-deps.sh

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# TOCSIN_REQUIRE_DEPS=1 turns "skipped: dependency missing" into a failure: under `make test` (and so
# CI) every test must really run. Plain `go test ./...` skips what the machine cannot run, and says how.
test: deps test-deps fmt-check vet
	TOCSIN_REQUIRE_DEPS=1 $(GO) test -race -count=1 -timeout 30m ./...

# Figures: the staleness measurement on each lab variant (containment, cause, width, requests, wall
# time; docs/checks.md has 20-run figures), the in-flight check's proof rate by gap and its false positives, and guard's cost per request
# against plain JWT validation (memory and PostgreSQL stores). Compare runs with benchstat.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./internal/check/
	TOCSIN_REQUIRE_DEPS=1 $(GO) test -run '^$$' -bench 'Endpoint|RevokeInFlight' -benchtime 1s -count 3 ./guard/

# Short fuzzing of the parsers of untrusted input (the seed corpora also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 30s ./internal/probe/

demo:
	$(GO) run ./cmd/tocsin demo

# Race engine spread: single-packet h2 (TLS, h2c), last-byte h1 and naive baselines, interleaved, on
# loopback and (as root, where the kernel has netem) a veth link with 10ms+-3ms delay. About 3 minutes.
bench-race:
	$(GO) run ./cmd/tocsin-racebench -batches 50 -n 2,10,20,100

# guard's Jepsen-style proof at any size: replicas on one PostgreSQL, concurrent writes, revocations,
# scope cuts and faults, checked for any write committed after a revocation returned. `make test`
# runs it at 10,000 operations; OPS=N sizes the clean run and the fault run.
OPS ?= 10000
.PHONY: jepsen
jepsen:
	JEPSEN_OPS=$(OPS) $(GO) test -race -count=1 -timeout 60m -run 'Jepsen' -v ./internal/jepsen/
