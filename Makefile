# tocsin: `make test` is what CI runs (.ci/run) and what README.md promises works on a fresh machine.
# It installs what the tests need (Go modules) and checks formatting, vet and the race detector.

GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build test deps test-deps fmt-check vet actionlint bench bench-race jepsen demo fuzz

all: build

# The binary records the git revision it was built from (tocsin --version), even where GOFLAGS says
# -buildvcs=false. VERSION (a release tag) and HOME_URL (where this tocsin lives, the "more about the
# tool" link in SARIF) are optional; HOME_URL defaults to the checkout's origin remote, as https.
VERSION ?=
HOME_URL ?= $(shell git remote get-url origin 2>/dev/null | sed -E 's#^git@([^:]+):#https://\1/#; s#\.git$$##' | grep '^https://')
LDFLAGS := $(if $(VERSION),-X github.com/tocsin/tocsin/internal/cli.Version=$(VERSION)) $(if $(HOME_URL),-X github.com/tocsin/tocsin/internal/report.HomeURL=$(HOME_URL))

build:
	$(GO) build -buildvcs=auto -ldflags '$(LDFLAGS)' -o bin/tocsin ./cmd/tocsin

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

# The Action (action.yml) and the workflow docs/ci.md shows, linted with actionlint as GitHub would
# read them: the workflow is cut out of the page and placed in a scratch repository beside a copy of
# the action, where the workflow uses it.
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
actionlint:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	mkdir -p "$$tmp/.git" "$$tmp/.github/workflows" "$$tmp/.tocsin" && cp action.yml "$$tmp/.tocsin/action.yml" && \
	awk '/^```yaml$$/ {on=1; next} /^```$$/ {on=0} on' docs/ci.md > "$$tmp/.github/workflows/tocsin.yml" && \
	test -s "$$tmp/.github/workflows/tocsin.yml" && \
	cd "$$tmp" && $(GO) run $(ACTIONLINT) -no-color && echo "actionlint: action.yml and the docs/ci.md workflow are clean"

# TOCSIN_REQUIRE_DEPS=1 turns "skipped: dependency missing" into a failure: under `make test` (and so
# CI) every test must really run. Plain `go test ./...` skips what the machine cannot run, and says how.
test: deps test-deps fmt-check vet actionlint
	TOCSIN_REQUIRE_DEPS=1 $(GO) test -race -count=1 -timeout 30m ./...

# Figures: the staleness measurement on each lab variant (containment, cause, width, requests, wall
# time; docs/checks.md has 20-run figures), the in-flight check's proof rate by gap and its false
# positives, and guard's cost per request against plain JWT validation (memory and PostgreSQL stores),
# one transaction per request against a pin plus a second connection, and revocations under load.
# Compare runs with benchstat.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./internal/check/
	$(GO) test -run '^$$' -bench CrackHMAC -benchtime 2000000x -count 1 ./internal/forge/
	TOCSIN_REQUIRE_DEPS=1 $(GO) test -run '^$$' -bench 'Endpoint|RevokeInFlight' -benchtime 1s -count 3 ./guard/
	TOCSIN_REQUIRE_DEPS=1 $(GO) test -run '^$$' -bench 'PostgresRequest|RevokeUnderLoad' -benchtime 6x ./guard/

# Short fuzzing of the parsers of untrusted input (the seed corpora also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 30s ./internal/probe/
	$(GO) test -run '^$$' -fuzz FuzzLearnBody -fuzztime 30s ./internal/redact/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./internal/forge/
	$(GO) test -run '^$$' -fuzz FuzzParseJWKS -fuzztime 30s ./internal/forge/
	$(GO) test -run '^$$' -fuzz FuzzParseDiscovery -fuzztime 30s ./internal/forge/

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
