# iamjit — two commands on a fresh machine: `make demo` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin/iamjit

.PHONY: all build test test-race test-procs soak vet fmt-check demo bench fuzz check-moto simulate-deps infra-e2e clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="$(LDFLAGS)" -o $(BIN) .

# The emulator: moto, pinned, started through internal/motoserver/moto_iamjit.py
# (its DynamoDB made atomic and isolated; the file says what and why).
MOTO_VERSION := 5.2.1
check-moto:
	@python3 internal/motoserver/moto_iamjit.py --check >/dev/null || { \
	  echo 'moto $(MOTO_VERSION) not found: install the AWS emulator with: pip install "moto[server]==$(MOTO_VERSION)"' >&2; exit 1; }

# The IAM simulator the session-revocation tests evaluate policies with
# (@cloud-copilot/iam-simulate, AGPL-3.0: a test tool only, pinned by the
# lock file; never in the binary or the image). Needs node and npm.
SIMULATE_DIR := sessions/testdata/simulate
simulate-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo 'node and npm not found: install them (apt-get install nodejs npm) for the IAM simulator tests' >&2; exit 1; }
	npm ci --prefix $(SIMULATE_DIR) --no-audit --no-fund --loglevel=error

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$bad" ]; then echo "gofmt would change: $$bad" >&2; exit 1; fi

vet:
	$(GO) vet ./...

# The whole suite against a real moto_server the tests start themselves on
# free ports. Fuzz targets run briefly: FUZZN inputs each (a count, not a
# time: a time limit that expires while the fuzzer minimises an input fails
# the run with "context deadline exceeded").
# Two go test runs side by side, each GOMAXPROCS packages at a time, the
# long ones first so that none starts late with a slot idle:
# - test-race: every package that runs iamjit's code in its own process,
#   with the race detector;
# - test-procs: the packages whose tests run the iamjit binary as separate
#   processes (internal/testbin builds it without -race) and drive it from
#   outside. -race there would instrument only the harness, at twice the
#   CPU (tools/chaos: 108 CPU-s with it, 52 without); `make soak` runs the
#   chaos harness under -race against race-built replicas.
# The chaos run drives what load can starve (overlaps, reorders, a late add
# for the read-back) until it is exercised, so it may run beside the others;
# its plan is sized for two busy cores (tools/chaos loadSettings).
FUZZN ?= 150000x
PROCS := ./tools/chaos ./test/e2e ./test/hostile
SLOW  := ./infra ./sessions ./internal/devstack ./internal/motoserver ./replay
test: check-moto simulate-deps fmt-check vet
	@$(MAKE) --no-print-directory -j2 test-race test-procs
	$(MAKE) fuzz FUZZN=$(FUZZN)

test-race:
	$(GO) test -race -count=1 -timeout 12m $(SLOW) $$($(GO) list ./... | grep -v -e '/tools/chaos$$' -e '/test/e2e$$' -e '/test/hostile$$')

test-procs:
	$(GO) test -count=1 -timeout 12m $(PROCS)

# The chaos run under the race detector, its replicas built with it too
# (TESTBIN_RACE): a race in iamjit under faults and kills fails the run
# (inv6). A plan twice make test's over twice the spread (IAM and Identity
# Center targets, kills, faults; every invariant checked at rest), alone:
# .ci/run runs it after make test. SOAK_EVENTS and SOAK_SPREAD size it;
# CHAOS_SEED replays a run.
SOAK_EVENTS ?= 96
SOAK_SPREAD ?= 45s
soak: check-moto
	TESTBIN_RACE=1 CHAOS_EVENTS=$(SOAK_EVENTS) CHAOS_SPREAD=$(SOAK_SPREAD) CHAOS_DEADLINE=300s \
	  $(GO) test -race -count=1 -timeout 20m -run '^TestChaos$$' -v ./tools/chaos

fuzz:
	$(GO) test ./events -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZN) -fuzzminimizetime 100x
	$(GO) test ./grants -run '^$$' -fuzz '^FuzzIdentity$$' -fuzztime $(FUZZN) -fuzzminimizetime 100x

# The deployment, proven (docs/infra-e2e.md): terraform apply of
# infra/environments/prod (its AWS half, manage_sym = false, one member
# account) against the project's moto, iamjit run on what it made with the
# task definition's environment and the task role's credentials under IAM
# access control, a second plan, terraform destroy. One line per check.
# Needs terraform and the hashicorp/aws provider in the filesystem mirror
# (IAMJIT_TF_PLUGIN_DIR, default /opt/tf-plugins). Not part of `make test`:
# its build tag keeps it out of `go test ./...`.
infra-e2e: check-moto simulate-deps
	$(GO) vet -tags infrae2e ./infra/e2e/
	$(GO) test -tags infrae2e -count=1 -v -timeout 12m -run '^TestInfraE2E$$' ./infra/e2e/

# Starts moto, creates the stack with `iamjit dev`, runs `iamjit run`,
# publishes a Sym escalate, shows the grant, its expiry and the results,
# then stops everything it started.
demo: check-moto build
	$(GO) run ./tools/demo -bin $(BIN)

# First the emulator's own check (a 3-item transaction at 20,000 items vs
# 100; its output is kept for the bench to record), then the bench itself.
bench: check-moto build
	@mkdir -p bin
	$(GO) test -run '^$$' -bench TransactionCostByTableSize -benchtime 1x ./internal/motoserver/ >bin/bench-txn-cost.txt; \
	  rc=$$?; cat bin/bench-txn-cost.txt; exit $$rc
	$(GO) run ./tools/bench -bin $(BIN) -txn-cost bin/bench-txn-cost.txt

clean:
	rm -rf bin
