# goshim6 — see README.md.
GO ?= go
STATICCHECK_VERSION := v0.8.2

.PHONY: all build test test-short lint generate man demo clean

all: build

build:
	$(GO) build ./...

# The test command (README.md, .ci/run). Runs everything, including the
# tests that need root, network namespaces and BPF; outside CI those skip
# with a reason when not run as root.
test:
	$(GO) test -race -count=1 -timeout 30m ./...

# Quick tests: no fuzzing seeds beyond the corpus, no slow generations.
test-short:
	$(GO) test -short -count=1 ./...

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

generate:
	$(GO) generate ./...

# Man pages of shim6ctl and shim6lab into dist/man (shim6d.8 is hand-written).
man:
	scripts/gen-man.sh
