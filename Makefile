# Targets for people and CI. `make help` lists them.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/callagent/resilience/internal/cli.Version=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help build run test test/short bench lint fuzz docs docker clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z\/_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/worker and bin/publisher
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./worker ./publisher

run: build ## Demo: embedded NATS, one worker, the example contacts, the seed's ElevenLabs-503 scenario
	@deploy/demo.sh

test: ## Run every test with the race detector (what CI runs)
	$(GO) test -race -count=1 -timeout 8m ./...

test/short: ## Quick tests without the race detector
	$(GO) test -count=1 ./...

bench: ## Run the benchmarks (resilience overhead, enqueue throughput)
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

fuzz: ## Fuzz the contacts parser for 30s
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime 30s ./internal/contact/

docs: ## Regenerate the README's configuration table from internal/config
	$(GO) test ./internal/config -run TestREADMEConfigurationTable -update

docker: ## Build the container image (needs a Docker engine)
	docker build -t call-agent:$(VERSION) .

clean: ## Remove build output, demo data and logs
	rm -rf $(BIN) data logs
