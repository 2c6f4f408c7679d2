# make demo   a working stack on this machine: packages, containerd, example images, the quickstart
# make test   every test: vet, gofmt, unit tests, integration tests against a private containerd
#
# Both run as root on Debian or Ubuntu and install what is missing with apt-get.
# Go 1.26 is expected in PATH or at /usr/local/go.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := /usr/local/go/bin:$(PATH)

GO             ?= go
PACKAGES       := containerd runc containernetworking-plugins iptables iproute2 tini busybox-static docker-registry ca-certificates tmux
VERSION        := $(shell git describe --always --dirty 2>/dev/null || echo dev)
IMAGES_DIR     := examples/images/out
IMAGES         := $(IMAGES_DIR)/busybox.oci.tar $(IMAGES_DIR)/hello.oci.tar
STACK          := /usr/local/bin/stack
QUICKSTART_DIR := examples/quickstart
QUICKSTART     := $(QUICKSTART_DIR)/compose.yaml

# Fuzz targets `make test` runs, as package:FuzzName pairs, e.g.
#   FUZZ := ./compose:FuzzLoad ./netdns:FuzzServeDNS
FUZZ     := ./netdns:FuzzServeDNS
FUZZTIME ?= 15s

# Steps run in the order they are listed, also under make -j.
.NOTPARALLEL:
.PHONY: deps build images demo test lint test-unit test-fuzz test-integration bench clean

## deps: the Debian packages (only when one is missing) and the Go modules.
deps:
	@missing=(); \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$$p"); \
	done; \
	if (( $${#missing[@]} )); then \
	  command -v apt-get >/dev/null || { echo "missing: $${missing[*]}; install them with your package manager" >&2; exit 1; }; \
	  [ "$$(id -u)" = 0 ] || { echo "missing: $${missing[*]}; run as root (or: sudo apt-get install $${missing[*]})" >&2; exit 1; }; \
	  echo "installing $${missing[*]}"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq; \
	  apt-get install -y -qq --no-install-recommends "$${missing[@]}"; \
	fi
	@command -v $(GO) >/dev/null || { echo "go not found: install Go 1.26 into /usr/local/go (https://go.dev/dl/)" >&2; exit 1; }
	$(GO) mod download

## build: bin/stack, statically linked (CGO_ENABLED=0): without the dynamic loader and libc every run starts about
## 1 ms of CPU sooner, which the CLI pays at each command and the shim at each container's logging binary. Only
## the standard library's net and os/user had cgo; their Go versions read /etc/hosts, /etc/resolv.conf and
## /etc/passwd. (No -trimpath: it would compile every dependency again, apart from the tests.)
build:
	CGO_ENABLED=0 $(GO) build -ldflags '-X main.version=$(VERSION)' -o bin/stack ./cmd/stack

## images: the example image archives, built offline (examples/images/build).
images:
	$(GO) run ./examples/images/build -o $(IMAGES_DIR)

# has_cmd succeeds when the installed stack has the command $(1). Cobra answers
# `--help` for an unknown command with the root help and exit 0, so look for
# the command's own usage line.
has_cmd = $(STACK) $(1) --help 2>/dev/null | grep -E '^  stack $(1)( |$$)' >/dev/null

## demo: install stack, make sure containerd runs, load the example images, bring up the quickstart.
demo: deps build images
	install -m 0755 bin/stack $(STACK)
	@echo "--- containerd (stack starts one when none answers)"
	@if $(call has_cmd,image ls); then $(STACK) image ls >/dev/null; fi
	@$(STACK) version
	@$(STACK) version | grep '^containerd version' >/dev/null || { \
	  echo "no containerd answers; run 'stack doctor' to see why" >&2; exit 1; }
	@echo "--- example images"
	@$(call has_cmd,image load) || { \
	  echo "this stack has no 'image load' command yet: the archives are in $(IMAGES_DIR) but cannot be loaded" >&2; exit 1; }
	@for f in $(IMAGES); do $(STACK) image load -i "$$f"; done
	@if $(call has_cmd,up) && [ -f $(QUICKSTART) ]; then \
	  echo "--- examples/quickstart"; \
	  $(STACK) -f $(QUICKSTART) up -d; \
	  $(STACK) -f $(QUICKSTART) ps; \
	  echo; \
	  echo "Try:"; \
	  echo "  curl http://127.0.0.1:8080/                       # web: its hostname and environment"; \
	  echo "  curl 'http://127.0.0.1:8080/call?url=api:8080/'   # web calls api by name"; \
	  echo "  cd $(QUICKSTART_DIR) && stack plan              # nothing to change"; \
	  echo "  cd $(QUICKSTART_DIR) && stack down"; \
	else \
	  $(STACK) image ls; \
	  echo; \
	  echo "Try:"; \
	  echo "  stack image ls"; \
	  echo "  stack doctor"; \
	  echo "  stack version"; \
	fi

## test: everything CI runs.
test: deps build images lint test-unit test-fuzz test-integration

lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-ed (run gofmt -w):" >&2; echo "$$unformatted" >&2; exit 1; fi

# The integration package fails without a containerd when CI=true; it runs in test-integration.
test-unit:
	$(GO) test $$($(GO) list ./... | grep -v /integration)

test-fuzz:
	@for f in $(FUZZ); do \
	  pkg=$${f%%:*}; name=$${f#*:}; \
	  echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
	done

# PRIVATE_CTD starts a containerd of its own under a fresh short directory
# (unix sockets are limited to 108 bytes) for the command that follows it in
# the same recipe line, and stops it whatever happens, showing its log tail
# when the command failed. (If the stop script cannot even start, as when the
# host is out of processes, the daemon is killed with shell builtins.)
PRIVATE_CTD = ctd=$$(mktemp -d /tmp/sctd.XXXX); export CTD_DIR=$$ctd; \
	trap 'exit 130' INT TERM; \
	trap 'rc=$$?; \
	  if [ $$rc -ne 0 ]; then echo "--- containerd log, last 50 lines ($$ctd/containerd.log)" >&2; tail -n 50 "$$ctd/containerd.log" >&2 || true; fi; \
	  sh integration/containerd.sh stop || { read -r pid < "$$ctd/containerd.pid" && kill -9 "$$pid"; } 2>/dev/null || true; \
	  rm -rf "$$ctd" 2>/dev/null || echo "could not remove all of $$ctd" >&2; \
	  exit $$rc' EXIT; \
	sh integration/containerd.sh start;

test-integration: build images
	@$(PRIVATE_CTD) \
	STACK_TEST_CONTAINERD=$$ctd/containerd.sock \
	STACK_TEST_BIN=$(CURDIR)/bin/stack \
	STACK_TEST_IMAGES=$(CURDIR)/$(IMAGES_DIR) \
	$(GO) test -count=1 -timeout 25m ./integration/...

## bench: converge timings against the containerd+CNI floor (integration/bench), on a private containerd,
## the lifecycle figures (logs --tail on a 1 GiB log, logging throughput, healthcheck CPU;
## BENCH_FLAGS='-section lifecycle' for those alone), then the DNS table (integration/bench/dnsbench): dnsperf against netdns, aardvark-dns and dnsmasq.
## BENCH_FLAGS passes options through, e.g. make bench BENCH_FLAGS='-n 1,10 -runs 3';
## DNS_BENCH_FLAGS to the DNS bench, e.g. DNS_BENCH_FLAGS='-names 100 -l 5s -half 3s'.
BENCH_FLAGS ?=
DNS_BENCH_FLAGS ?=
# Only `make bench` installs these. dnsmasq-base is the binary without the
# system service, so nothing starts listening on port 53.
BENCH_PACKAGES := dnsperf aardvark-dns dnsmasq-base
bench: deps build images
	@missing=(); \
	for p in $(BENCH_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$$p"); \
	done; \
	if (( $${#missing[@]} )); then \
	  echo "installing $${missing[*]}"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq; \
	  apt-get install -y -qq --no-install-recommends "$${missing[@]}"; \
	fi
	$(GO) build -o bin/dnsbench ./integration/bench/dnsbench
	@# dnsbench removes its test bridge and stops what it started, also on
	@# SIGINT/SIGTERM; a bridge left by a kill -9 goes at the next run.
	@$(PRIVATE_CTD) \
	$(GO) run ./integration/bench -address $$ctd/containerd.sock -stack $(CURDIR)/bin/stack -images $(CURDIR)/$(IMAGES_DIR) $(BENCH_FLAGS) && \
	bin/dnsbench -address $$ctd/containerd.sock -stack $(CURDIR)/bin/stack -images $(CURDIR)/$(IMAGES_DIR) $(DNS_BENCH_FLAGS)

clean:
	rm -rf bin $(IMAGES_DIR)
