# ptyhost — see README.md. `make run` and `make test` are the two commands a
# fresh machine needs.

GO        ?= go
BIN       := bin
PLUGINS   := host docker ssh
DATA_DIR  ?= .data
LISTEN    ?= 127.0.0.1:7420

PLUGIN_BINS := $(PLUGINS:%=$(BIN)/plugins/ptyhost-plugin-%)

.PHONY: all build run test bench fuzz proto lint web clean FORCE

all: build

build: $(BIN)/ptyhost $(PLUGIN_BINS)

# The version every binary's --version prints: the checkout's tag or
# commit (git describe), unless given (make VERSION=v1.2.0). Without it
# (no git), the binaries fall back to what the go command recorded
# (shared.Version).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS  := $(if $(VERSION),-X github.com/ptyhost/ptyhost/shared.version=$(VERSION))

# Go's own cache decides what to rebuild; FORCE makes make always ask it.
$(BIN)/ptyhost: FORCE
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/ptyhost

# The DOCKER plugin is linked statically: it is also the command of the
# containers it creates (docs/environments.md, "terminal").
$(BIN)/plugins/ptyhost-plugin-%: FORCE
	$(if $(filter docker,$*),CGO_ENABLED=0 )$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./plugins/$*

FORCE:

# Start the server on the embedded defaults: SQLite in $(DATA_DIR), the
# plugins in bin/plugins, loopback only, with a ready "host" environment.
run: build
	$(BIN)/ptyhost serve --listen $(LISTEN) --data-dir $(DATA_DIR) --plugin-dir $(BIN)/plugins

# Install what the tests need, start the services, run every test with -race.
test:
	./scripts/test.sh

# Run each Go fuzz target for FUZZTIME, one after the other; failing inputs
# stay in testdata/fuzz as regression cases (see scripts/fuzz.sh).
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Throughput and echo latency through the whole path against a direct PTY;
# the DOCKER and SSH paths against the services (see scripts/bench.sh).
bench: build
	./scripts/bench.sh

# Regenerate the plugin protocol's Go code (needs protoc; see scripts/proto.sh).
proto:
	./scripts/proto.sh

# Copy the pinned xterm.js packages (core/webui/package-lock.json) into
# core/webui/dist/vendor, which is committed; needs node and npm. Run it
# after changing the pins; the page's own sources, core/webui/src, are
# served as written.
web:
	cd core/webui && npm ci --no-audit --no-fund && node build.mjs

lint:
	$(GO) vet ./...
	./scripts/staticcheck.sh ./...

clean:
	rm -rf $(BIN) coverage.out
