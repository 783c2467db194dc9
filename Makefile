# kmsgo — see README.md. `make run` starts kmsd on embedded defaults; `make test` runs every test.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -timeout 30m
DATA_DIR  ?= .kmsgo-data

.PHONY: run test bench lint fuzz softhsm build

run:
	$(GO) run ./cmd/kmsd --data-dir $(DATA_DIR)

build:
	$(GO) build -o bin/ ./cmd/...

# SoftHSM2 is needed by the PKCS#11 tests; install it when missing (as root) or say how.
softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing softhsm2 (needed by the PKCS#11 tests)"; \
	    (apt-get install -y -qq softhsm2 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq softhsm2 >/dev/null)); \
	  else \
	    echo "SoftHSM2 is required by the tests: sudo apt-get install -y softhsm2" >&2; exit 1; \
	  fi; }

test: softhsm
	$(GO) test $(TESTFLAGS) $(PKGS)

bench: softhsm
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short fuzz pass over every fuzz target (seed corpora live in testdata/fuzz).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done
