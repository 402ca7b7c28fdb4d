# lockstep: make build | test | demo | bench | crashtest | fuzz | install
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Recipes run in bash with pipefail, so that a pipe keeps go test's status.
SHELL := bash
.SHELLFLAGS := -o pipefail -c

.PHONY: build test demo bench crashtest fuzz install clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o lockstep .

# The test command (CI runs it too): formatting, vet, and every test under
# the race detector, each fuzz target on its seed corpus, with a line per
# test taking 1s or more as it finishes (scripts/testfmt) and go test's
# usual ok/FAIL lines. Under 2 minutes on a 2-core machine: the
# process-level tests mostly wait on timeouts, so they run 16 at a time
# (see e2e_test.go). The long variants are make crashtest and make fuzz.
# The PostgreSQL tests start a throwaway cluster of their own; where
# initdb is missing, scripts/postgres.sh installs Debian's postgresql
# package (as root), or says loudly that those tests will be skipped.
TESTFLAGS ?= -race -count=1 -parallel 16
# vet builds what the tests build (on a cold cache that is 17 s less).
VETFLAGS ?= -race
test:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet $(VETFLAGS) ./...
	bash scripts/postgres.sh
	$(GO) test -json $(TESTFLAGS) ./... | $(GO) run ./scripts/testfmt -min 1s

demo: build
	bash scripts/demo.sh

# Figures for the README: tail and sync against curl and jq on 1,000,000
# records, then the Go benchmarks.
bench: build
	bash scripts/bench.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The kill -9 test of sync, 200 kills (make test does 30).
crashtest:
	LOCKSTEP_CRASH_KILLS=200 $(GO) test -count=1 -run 'TestSync_CrashAnywhere' -timeout 30m -v . 2>&1 | tail -5

# Each fuzz target for FUZZTIME: a duration, or a number of inputs such as
# 20000x. CI gives numbers, per package (FUZZTIME_FOLLOW, FUZZTIME_STATE):
# Go 1.26's fuzzer can fail a run limited by time with a bare "context
# deadline exceeded" when the time runs out mid-input (golang/go#75804),
# most often in state, where every input is a file written with fsync.
# Such a failure writes no input under testdata/fuzz; a real one does.
FUZZTIME ?= 30s
FUZZTIME_FOLLOW ?= $(FUZZTIME)
FUZZTIME_STATE ?= $(FUZZTIME)
fuzz:
	@for spec in ./follow=$(FUZZTIME_FOLLOW) ./state=$(FUZZTIME_STATE); do \
		pkg=$${spec%%=*}; fuzztime=$${spec#*=}; \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$t for $$fuzztime"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $$fuzztime $$pkg || exit 1; \
		done; \
	done

install:
	$(GO) install -ldflags '$(LDFLAGS)' .

clean:
	rm -f lockstep
	rm -rf testdata/bench
