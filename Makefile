# Parley. `make run` runs the engine on its embedded defaults; `make test`
# runs the whole test suite against a real ClickHouse and a real
# Kafka-protocol broker.
GO       ?= go
BIN      := bin/parley
PKGS     := ./...

.PHONY: build run test test-short vet fmt fmtcheck fuzz bench clickhouse clean

build:
	$(GO) build -o $(BIN) ./cmd/parley

# Embedded broker, local ClickHouse child process, demo tenant, simulator.
run: clickhouse build
	./$(BIN) dev

# ClickHouse must be installed for `make run` and `make test` (the tests
# start their own server from the binary).
clickhouse:
	@scripts/ensure-clickhouse.sh

test: clickhouse fmtcheck
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short:
	$(GO) test -count=1 $(PKGS)

fmt:
	gofmt -w .

# The tracked Go files are gofmt-clean.
fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed (make fmt):"; echo "$$out"; exit 1; fi

# Run every fuzz target (found in the tests) for FUZZTIME each (default 30s):
# make fuzz FUZZTIME=5m
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench:
	$(GO) run ./bench/ingress

clean:
	rm -rf bin .parley
