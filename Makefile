# userapi: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO ?= go
# Local services (PostgreSQL, Redis) come from scripts/dev-env.sh, which
# prints the environment to use: the caller's, the machine's, or a
# project-local cluster under .data/ that it starts on demand, installing
# PostgreSQL and Redis with apt-get first when it may.
DEV_ENV := eval "$$(scripts/dev-env.sh start)"

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_/-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# make run FRONTEND=1: for a browser app's dev server (docs/frontend.md): CORS
# for Vite's http://localhost:5173 and budgets an end-to-end run does not
# exhaust. Variables set in the environment win.
FRONTEND_ENV = $(if $(FRONTEND),USERAPI_CORS_ORIGINS="$${USERAPI_CORS_ORIGINS:-http://localhost:5173}" \
	USERAPI_RATE_LIMIT="$${USERAPI_RATE_LIMIT:-6000/1m}" USERAPI_RATE_LIMIT_WRITES="$${USERAPI_RATE_LIMIT_WRITES:-6000/1m}")

.PHONY: run
run: ## Run the service on :8080 (docs at /docs), starting PostgreSQL if needed; prints a development API key. FRONTEND=1: CORS for http://localhost:5173 and relaxed rate limits.
	@$(DEV_ENV) && echo "building bin/userapi" && $(GO) build -o bin/userapi ./cmd/userapi \
		&& exec env $(FRONTEND_ENV) bin/userapi serve --dev-key-file .data/dev-api-key

.PHONY: test
test: ## Run every test against real PostgreSQL, starting it if needed (installs haproxy and pgbouncer for the tests that put them in front of the service).
	@missing=""; \
		command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
		command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing="$$missing pgbouncer"; \
		[ -z "$$missing" ] || { echo "installing$$missing for the tests that run the service behind them"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		{ $$sudo apt-get update -qq && $$sudo apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "$$missing could not be installed: the rolling-restart test will be skipped, and the PgBouncer test will fail"; }
	@$(DEV_ENV) && echo "go test -race ./...: compiling with the race detector, then one line per package as it finishes (a few minutes in all)" \
		&& $(GO) test -race -count=1 ./...

.PHONY: test-pgbouncer
test-pgbouncer: ## Run the HTTP and job suites with every database pool behind a PgBouncer in transaction mode.
	@$(DEV_ENV) && USERAPI_TEST_PGBOUNCER=on $(GO) test -race -count=1 ./server/ ./jobs/

.PHONY: image
image: ## Build the container image without a daemon, reproducibly: an OCI layout in bin/userapi-image.tar; prints its digest.
	$(GO) run ./cmd/image -out bin/userapi-image.tar

.PHONY: generate
generate: ## Regenerate gen/ and clients/typescript (from openapi.yaml) and store/internal/dbsqlc (from SQL).
	$(GO) generate ./api/... ./store/...
	cd clients/typescript && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent generate

.PHONY: docs
docs: ## Rewrite the settings lists in docs/operations.md and the chart's values.yaml from cmd/userapi/config.go (tests fail when they differ).
	@$(DEV_ENV) && $(GO) test -count=1 -run '^(TestSettingsDoc|TestChartValuesListSettings)$$' ./cmd/userapi -update

GENERATED := gen store/internal clients/typescript/src/schema.ts

.PHONY: verify
verify: generate ## Fail when generated code differs from what `make generate` produces.
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then \
		git status --short -- $(GENERATED); \
		echo "generated code is stale: run 'make generate' and commit the result"; exit 1; fi

.PHONY: contract
contract: ## Lint the spec, gate breaking changes, test the TypeScript client (directly and through Prism), check the docs in Chromium.
	@scripts/contract.sh

.PHONY: vet
vet: ## Run go vet, and fail on Go files gofmt would change.
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi

.PHONY: lint
lint: ## Run staticcheck (pinned in tools/go.mod) over every package.
	$(GO) tool -modfile=tools/go.mod staticcheck ./...

HELM := $(GO) tool -modfile=tools/go.mod helm
CHART := deploy/helm/userapi

.PHONY: chart
chart: ## Lint the Helm chart and render it (Helm pinned in tools/go.mod; go test ./cmd/userapi checks what it renders).
	$(HELM) lint --strict $(CHART) --set database.secretName=userapi-database
	@out=$$(mktemp) && trap 'rm -f "$$out"' EXIT \
		&& $(HELM) template userapi $(CHART) --set database.secretName=userapi-database \
			--set redis.secretName=userapi-redis --set metrics.serviceMonitor.enabled=true >"$$out" \
		&& echo "helm template: $$(grep -c '^kind:' "$$out") objects rendered"

.PHONY: stop
stop: ## Stop the project-local PostgreSQL and Redis started by run or test.
	@scripts/dev-env.sh stop

.PHONY: bench
bench: ## Load-test the real server against a static-JSON reference, in one run (needs wrk).
	@command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null 2>&1 || sudo apt-get install -y -qq wrk; } \
		|| { echo "wrk is missing: install it (Debian: apt-get install wrk)"; exit 1; }
	@$(DEV_ENV) && $(GO) run ./cmd/bench $(BENCH_ARGS)
