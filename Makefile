# lockstep: make build | test | demo | bench | crashtest | fuzz | install
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build test demo bench crashtest fuzz install clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o lockstep .

# What CI runs: formatting, vet, every test under the race detector, and
# each fuzz target for a few seconds.
test:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=3s

demo: build
	bash scripts/demo.sh

# Figures for the README: tail and sync against curl and jq on 1,000,000
# records, then the Go benchmarks.
bench: build
	bash scripts/bench.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The kill -9 test of sync, 200 kills.
crashtest:
	LOCKSTEP_CRASH_KILLS=200 $(GO) test -count=1 -run 'TestSync_CrashAnywhere' -timeout 30m -v . 2>&1 | tail -5

FUZZTIME ?= 30s
fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./follow ./state | grep '^Fuzz'); do \
		pkg=./follow; $(GO) test -list "^$$t\$$" ./state | grep -q "^$$t" && pkg=./state; \
		echo "fuzz $$pkg $$t for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

install:
	$(GO) install -ldflags '$(LDFLAGS)' .

clean:
	rm -f lockstep
	rm -rf testdata/bench
