# Attaché — `make run` starts the gateway on its embedded defaults (a simulated serial device,
# a local cache and a local mTLS broker); `make test` runs every test. Both install what is missing.

SHELL := /bin/bash
DEB_PACKAGES := mosquitto mosquitto-clients socat openssl python3-pymodbus python3-serial python3-serial-asyncio mbpoll python3-hl7 shellcheck systemd udev python3 iproute2 util-linux nftables python3-pyfuse3 chromium dosfstools mtools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NPM_STAMP := node_modules/.package-lock.json
# The AWS CDK app has its own dependencies (cloud/package.json): only `make test` and `make -C cloud`
# install them, never `make run`, `make build` or the image.
CLOUD_STAMP := cloud/node_modules/.package-lock.json

.PHONY: all deps node-check build run status sync test lint typecheck bench bench-peers clean release
NODE_MIN ?= 20

all: build

## deps: install the Debian packages the gateway and its tests need (only those missing)
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(MAKE) --no-print-directory node-check

## node-check: Node.js must be >= 20 (Debian 13's nodejs is 20; Debian 12's is 18: the message says what to do)
node-check:
	@major=$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0); \
	if [ "$$major" -lt $(NODE_MIN) ]; then \
	  echo "Attaché needs Node.js >= $(NODE_MIN); this machine has $$(node -v 2>/dev/null || echo no node)."; \
	  echo "  Debian 13 (trixie): sudo apt-get install nodejs npm   (its nodejs is 20)"; \
	  echo "  Debian 12 (bookworm) ships nodejs 18: install Node.js 20 from NodeSource"; \
	  echo "  (https://github.com/nodesource/distributions), then run make again:"; \
	  echo "    curl -fsSL https://deb.nodesource.com/setup_20.x -o nodesource_setup.sh"; \
	  echo "    sudo bash nodesource_setup.sh && sudo apt-get install -y nodejs"; \
	  exit 1; \
	fi

$(NPM_STAMP): package.json package-lock.json packages/*/package.json
	npm ci --no-audit --no-fund
	@touch $@

$(CLOUD_STAMP): cloud/package.json cloud/package-lock.json
	npm ci --prefix cloud --no-audit --no-fund
	@touch $@

## build: compile every package (tsc -b, in dependency order)
build: $(NPM_STAMP)
	npm run --silent build

## run: start the gateway with a simulated pulse oximeter and a local mTLS broker (Ctrl-C stops all)
run: deps build
	node packages/devkit/dist/dev-gateway.js packages/cli/dist/bin.js

## status, sync: ask the gateway started by `make run` (in another terminal)
status:
	packages/cli/dist/bin.js status --config .dev/config.json

sync:
	packages/cli/dist/bin.js sync --config .dev/config.json

## test: lint, type-check, and run every unit and end-to-end test (the CDK app's synthesis with
##       cdk-nag included: cloud/test)
test: deps build $(CLOUD_STAMP)
	npm run --silent gen:check
	npx biome check .
	npx tsc -p tsconfig.test.json
	npx tsc -p cloud/tsconfig.json
	npx tap

## bench: every benchmark, figures printed, never asserted (bench/README.md). The full sizes take
##        about 40 min: e.g. `make bench BENCH_RECORDS=100000 BENCH_SECONDS=15` for a quick run.
BENCH_RECORDS ?= 1000000
BENCH_SECONDS ?= 60
bench: deps build
	node bench/run.mjs
	node --expose-gc bench/cache.mjs $(BENCH_RECORDS)
	BENCH_SECONDS=$(BENCH_SECONDS) node bench/astm.mjs
	node bench/hl7.mjs
	BENCH_SECONDS=$(BENCH_SECONDS) node bench/modbus.mjs
	BENCH_SECONDS=$(BENCH_SECONDS) node bench/polled.mjs
	BENCH_RECORDS=$(BENCH_RECORDS) node bench/uplink.mjs
	node bench/jobs.mjs
	node --import @tapjs/typescript/import bench/provisioning.mjs
	node --import @tapjs/typescript/import bench/files-up.mjs
	node --v8-pool-size=1 --max-semi-space-size=4 bench/hostile.mjs
	BENCH_RECORDS=$(BENCH_RECORDS) node bench/drain.mjs
	node bench/regex-linear.mjs
	node bench/idle-rss.mjs

## bench-peers: Attaché and the tools a user would otherwise pick (Node-RED 4 with serial in → MQTT
##              and node-red-contrib-modbus flows, bare classic-level, mosquitto_pub, mbpoll,
##              python3-hl7's MLLP server, the disk's fsync ceiling) taking turns in one run; the npm
##              peers are installed into a temporary directory, never into the project
##              (bench/README.md, "Against peers"). Waits (bounded) for a quiet machine.
bench-peers: deps build
	BENCH_RECORDS=100000 node bench/peers/run.mjs

clean:
	npx tsc -b --clean
	rm -rf .tap .dev .release

## soak: the crash harnesses (a cache writer process; a real `attache run` fed HL7 by 4 senders; one fed ASTM, line and Modbus) with
##       many more SIGKILLs each (SOAK_KILLS, default 500; the gateway one takes ~2 s a kill; ATTACHE_CRASH_SEED replays a run),
##       and SOAK_POWER_CUTS (default 200) power cuts each of a gateway and of a file store on the FUSE power-cut disk (root; 200 gateway cuts took 20 min on 2 busy cores)
.PHONY: soak
SOAK_KILLS ?= 500
SOAK_POWER_CUTS ?= 200
soak: deps build
	ATTACHE_CRASH_KILLS=$(SOAK_KILLS) ATTACHE_POWER_CUTS=$(SOAK_POWER_CUTS) npx tap --disable-coverage --timeout=0 test/crash.test.ts test/crash-gateway.test.ts test/crash-adapters.test.ts test/power-cut.test.ts

## fuzz: the fuzz tests (parsers, ACKs, framing, Modbus answers, the config check; every device-input
##       regular expression) with FUZZ_RUNS inputs per property instead of the suite's few hundred
##       (ATTACHE_FUZZ_SEED replays a failure with the seed fast-check printed)
.PHONY: fuzz
FUZZ_RUNS ?= 100000
FUZZ_FILES = packages/astm/test/fuzz.test.ts packages/hl7/test/fuzz.test.ts \
	packages/line-formats/test/fuzz.test.ts packages/adapter-modbus/test/fuzz.test.ts \
	packages/cli/test/fuzz-config.test.ts test/regex-linear.test.ts
fuzz: deps build
	ATTACHE_FUZZ_RUNS=$(FUZZ_RUNS) npx tap --disable-coverage --timeout=0 $(FUZZ_FILES)

# ---- the appliance image (issue 8; image-build/README.md) ----
.PHONY: image image-test image-check

## image: the Raspberry Pi image (Debian trixie arm64) -> image-build/out/attache-<version>-arm64.img.zst + .sha256
##        (needs root, qemu-user-static + binfmt; 36 min measured on 2 busy cores; the .deb cache in image-build/cache saves the downloads)
image: build
	$(SUDO) image-build/build.sh

## image-test: boots the built image in qemu-system-aarch64 -M virt and tests the appliance (12 min measured)
image-test:
	$(SUDO) node image-build/boot-test.mjs

## release: the shipped release tree (esbuild bundle + native modules) in .release/ (scripts/bundle.mjs;
##          make image installs it with image-build/stage-app.sh)
release: build
	node scripts/bundle.mjs .release

## image-check: the cheap checks CI runs (shellcheck, systemd-analyze verify, udev rules, arm64 prebuilds)
image-check: build
	npx tap --disable-coverage test/image.test.ts
