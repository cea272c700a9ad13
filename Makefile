# tocsin: `make test` is what CI runs (.ci/run) and what README.md promises works on a fresh machine.
# It installs what the tests need (Go modules) and checks formatting, vet and the race detector.

GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test deps test-deps fmt-check vet bench demo fuzz

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

# Figures: bracket width and requests of the staleness measurement on the lab at TTL 1 s and 3 s,
# and guard's cost. Compare runs with benchstat.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./internal/check/ ./guard/

# Short fuzzing of the parsers of untrusted input (the seed corpora also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 30s ./internal/probe/

demo:
	$(GO) run ./cmd/tocsin demo
