# Targets for people and CI. `make help` lists them.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/callagent/resilience/internal/cli.Version=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help build run test test/short chaos bench lint fuzz docs docker clean

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

chaos: ## Chaos suite at full size: real nats-server, 3 workers, kills, outages, poison, hostile providers (tables in logs/chaos)
	CHAOS=full CHAOS_REPORT_DIR=$(CURDIR)/logs/chaos $(GO) test -count=1 -timeout 30m -run . -v ./internal/chaos/

bench: ## Micro-benchmarks, then the end-to-end worker vs bare JetStream consumer (BENCH_SCALE=0.1 for a quick run)
	BENCH_E2E= $(GO) test -run '^$$' -bench . -benchmem ./...
	BENCH_E2E=1 $(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 1x -timeout 60m ./internal/bench/
	BENCH_E2E=1 $(GO) test -run '^$$' -bench '^BenchmarkEnqueueMillion$$' -benchtime 1x -timeout 30m ./internal/queue/

# staticcheck is pinned as a tool in go.mod (go get -tool honnef.co/go/tools/cmd/staticcheck@vX)
# and runs with its default checks: no configuration file.
lint: ## gofmt, go vet and staticcheck (what CI runs after the tests)
	@unformatted=$$(gofmt -l .); \
		test -z "$$unformatted" || { echo "gofmt -w needed:"; echo "$$unformatted"; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

FUZZTIME ?= 30s
# package:target, every fuzz target of the project; `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := \
	contact:FuzzReader contact:FuzzQuickCheck contact:FuzzDecode contact:FuzzValidJSON config:FuzzSetting config:FuzzLocateEnvError config:FuzzLoadEnvFile \
	fault:FuzzParseRetryAfter redact:FuzzText queue:FuzzParseDeadLetter queue:FuzzDeadLetterRoundTrip \
	provider/elevenlabs:FuzzParseError provider/openai:FuzzParseError provider/crm:FuzzErrorAnswer \
	alert:FuzzDecodeEvent alert:FuzzDecodeNotification alert/telegram:FuzzNotifyAnswer alert/slack:FuzzNotifyAnswer \
	alert/pagerduty:FuzzNotifyAnswer alert/webhook:FuzzNotifyAnswer alert/webhook:FuzzSignVerify sheets:FuzzRefusal \
	logging:FuzzAppendString logging:FuzzAppendFloat logging:FuzzSensitiveKey logging:FuzzMatchesLegacy \
	redact:FuzzPrefilters redact:FuzzPlain metrics:FuzzLabelChecks

fuzz: ## Run every fuzz target for FUZZTIME each (default 30s): parsers of contacts, settings, provider and channel answers, dead letters
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./internal/$$pkg/; \
	done

docs: ## Regenerate the README's configuration table from internal/config
	$(GO) test ./internal/config -run TestREADMEConfigurationTable -update

docker: ## Build the container image (needs a Docker engine)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t call-agent:$(VERSION) .

clean: ## Remove build output, demo data and logs
	rm -rf $(BIN) data logs
