# Attaché — `make run` starts the gateway on its embedded defaults (a simulated serial device,
# a local cache and a local mTLS broker); `make test` runs every test. Both install what is missing.

SHELL := /bin/bash
DEB_PACKAGES := mosquitto mosquitto-clients socat openssl python3-pymodbus mbpoll python3-hl7
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NPM_STAMP := node_modules/.package-lock.json

.PHONY: all deps build run status sync test lint typecheck bench clean

all: build

## deps: install the Debian packages the gateway and its tests need (only those missing)
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(NPM_STAMP): package.json package-lock.json packages/*/package.json
	npm ci --no-audit --no-fund
	@touch $@

## build: compile every package (tsc -b, in dependency order)
build: $(NPM_STAMP)
	npm run --silent build

## run: start the gateway with a simulated pulse oximeter and a local mTLS broker (Ctrl-C stops all)
run: deps build
	node packages/devkit/dist/dev-gateway.js

## status, sync: ask the gateway started by `make run` (in another terminal)
status:
	packages/cli/dist/bin.js status --config .dev/config.json

sync:
	packages/cli/dist/bin.js sync --config .dev/config.json

## test: lint, type-check, and run every unit and end-to-end test
test: deps build
	npm run --silent gen:check
	npx biome check .
	npx tsc -p tsconfig.test.json
	npx tap

## bench: throughput and memory figures (printed, not asserted)
bench: deps build
	node bench/run.mjs

clean:
	npx tsc -b --clean
	rm -rf .tap .dev
