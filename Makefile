# Parley. `make run` runs the engine on its embedded defaults; `make test`
# runs the whole test suite against a real ClickHouse and a real
# Kafka-protocol broker.
GO       ?= go
BIN      := bin/parley
PKGS     := ./...

.PHONY: build run test test-short vet fmt fmtcheck fuzz bench clickhouse helm helm-check clean

build:
	$(GO) build -o $(BIN) ./cmd/parley

# Embedded broker, local ClickHouse child process, demo tenant, simulator.
run: clickhouse build
	./$(BIN) dev

# ClickHouse must be installed for `make run` and `make test` (the tests
# start their own server from the binary).
clickhouse:
	@scripts/ensure-clickhouse.sh

test: clickhouse fmtcheck helm-check
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# Helm v4 built from the Go module proxy into bin/tools, once (a few minutes
# of compiling on two cores; later runs find it).
HELM := bin/tools/helm
helm:
	@scripts/ensure-helm.sh

# The chart lints and renders, and its manifests decode strictly with the
# official Kubernetes API types (deploy/helm/check: a module of its own, so
# Parley's module does not pull k8s.io/api). The check parses the rendered
# config with Parley's own parser (a replace of this module), so -mod=mod:
# when config/ gains an import, the check's go.sum follows without a tidy.
helm-check: helm
	$(HELM) lint --strict deploy/helm/parley
	$(HELM) template parley deploy/helm/parley >/dev/null
	cd deploy/helm/check && GOFLAGS=-mod=mod $(GO) vet ./... && HELM=$(CURDIR)/$(HELM) GOFLAGS=-mod=mod $(GO) test -count=1 ./...

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
