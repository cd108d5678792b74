# gssocks build and test entry points. Go is looked up on PATH, then in
# /usr/local/go/bin.
export PATH := $(PATH):/usr/local/go/bin

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
FUZZTIME ?= 30s

.PHONY: all deps demo test check fmt-check vet cross bench bench-socks bench-soak fuzz package image

all: check

# MIT Kerberos tools, krb5 headers and a C compiler (no-op when present).
deps:
	bash scripts/install-deps.sh

# MIT client -> our GSS-API acceptor on a throwaway local realm.
demo: deps
	$(GO) run ./testenv/cmd/demo

test: deps check
	$(GO) test -race -count=1 -timeout 25m ./...
	# packaging/ is its own module (nfpm, go-containerregistry): build the
	# .deb (installed with dpkg -i as root, then purged), the .rpm and the
	# image. Without -race: it runs no concurrent code of ours, and the
	# race detector makes the compressors ten times slower.
	cd packaging && $(GO) test -count=1 -timeout 10m ./...

check: fmt-check vet cross

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd packaging && $(GO) vet ./...

# gssocks bridge and connect are what users run on their laptops: the
# binary must build for Windows and macOS, not only for the gateway's
# Linux (one architecture each: what differs is the OS).
cross:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/gssocks
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/gssocks

# dist/: the static binary, gssocks_<version>_<arch>.deb and
# gssocks-<version>-1.<arch>.rpm (nfpm). VERSION=1.2.0 overrides the
# version taken from git (tag vX.Y.Z at HEAD, else a 0.0.0~git snapshot).
MKPKG = cd packaging && $(GO) run ./cmd/mkpkg -root .. -out ../dist $(if $(VERSION),-version $(VERSION))

package:
	$(MKPKG) -formats deb,rpm

# dist/gssocks-image.tar: an OCI image layout (FROM scratch, uid 65532),
# built without a Docker daemon; podman load -i dist/gssocks-image.tar.
image:
	$(MKPKG) -formats image

# Per-message crypto and context establishment (go test -bench), 6 runs;
# summarise with benchstat bench/gssapi.txt.
bench:
	mkdir -p bench
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./gssapi/ | tee bench/gssapi.txt

# gssocks beside Dante's sockd in one run, our client package as the load
# generator (bench/socksbench): 1 GiB each way per level and enctype against
# the crypto floor, 64 streams, setup from 1 and 32 workers, 10 000 idle
# sessions, socksify + curl, a perf profile (median of 3, A B A B ...).
# Writes bench/socks.md. CI runs the tiny -quick form (TestQuick).
bench-socks: deps
	bash bench/socks.sh -out bench/socks.md

# 1 000 concurrent checked sessions through gssocks for 5 minutes, gateway
# memory sampled every second (CI runs 30 s of it: TestSoak).
bench-soak: deps
	bash bench/socks.sh -soak 5m -sessions 1000 -out bench/soak.md

# Each Fuzz target of each package for $(FUZZTIME) (go test -fuzz takes one
# target of one package at a time).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		list="$$($(GO) test -list '^Fuzz' "$$pkg")"; \
		for f in $$(grep '^Fuzz' <<<"$$list" || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done
