# keycommit — build, test, check, benchmark.
#
#   make dev     run a complete local deployment (log, witnesses, monitor) on loopback
#   make test    run every test with the race detector
#   make check   gofmt, go vet, staticcheck, go mod tidy -diff
#   make bench   run the benchmarks (figures are ratios against baselines measured in the same run)

GO          ?= go
BIN         ?= bin
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_FLAGS  ?= -race -count=1 -timeout 30m
BENCH_FLAGS ?= -run '^$$' -bench . -benchmem -timeout 60m

.PHONY: all build dev test check bench clean

all: build

build:
	$(GO) build -o $(BIN)/keycommit ./cmd/keycommit

# The default data directory of `keycommit dev` (in .gitignore: it holds
# the log's and the demo issuer's private keys).
dev: build
	$(BIN)/keycommit dev --data keycommit-dev

# Every test with the race detector; then, without it, the tests that
# scale themselves down under -race (the 10,000-entry policy replay and the
# every-byte mangling of commitments) at full size.
test:
	$(GO) test $(TEST_FLAGS) ./...
	$(GO) test -count=1 -timeout 20m -run 'TestReplay|TestMangle' ./policy ./schema

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@# -e: a test-only dependency of modernc.org/sqlite's own tests
	@# (github.com/google/pprof) is not served by the module proxy; it is
	@# never built into keycommit. Any real difference still fails.
	$(GO) mod tidy -e -diff

bench:
	$(GO) test $(BENCH_FLAGS) ./...

clean:
	rm -rf $(BIN) keycommit-dev
