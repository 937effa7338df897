#!/usr/bin/env bash
# test.sh — what `make test` and CI run: install what the tests need, start
# the services they run against, lint, and run every test with -race.
# Services are stopped again on exit, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

export PTYHOST_INTEGRATION=1
export PTYHOST_SERVICES_DIR="${PTYHOST_SERVICES_DIR:-$repo/.services}"
min_core_coverage=85

step() { printf '\n== %s\n' "$*" >&2; }

# export_lines exports every NAME=value line of its input.
export_lines() {
  local line
  while IFS= read -r line; do
    [ -n "$line" ] && export "${line?}"
  done
}

stop_services() {
  step "stopping services"
  scripts/services/sshd.sh stop || true
  scripts/services/docker.sh stop || true
  scripts/services/postgres.sh stop || true
}
trap stop_services EXIT

# tmux, for the TMUX plugin example's tests; zsh and fish, for the
# completion scripts' tests; Debian's Chromium, for the browser tests
# (internal/browsertest). One package list update for all.
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
if ! command -v chromium >/dev/null && ! command -v chromium-headless-shell >/dev/null; then
  missing+=(chromium)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update >&2 && apt-get install -y "${missing[@]}" >&2
fi

step "starting PostgreSQL"
lines="$(scripts/services/postgres.sh start)"
export_lines <<<"$lines"

step "starting Docker"
lines="$(scripts/services/docker.sh start)"
export_lines <<<"$lines"

step "starting sshd"
lines="$(scripts/services/sshd.sh start)"
export_lines <<<"$lines"

step "formatting and vet"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.services/*'))"
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
scripts/staticcheck.sh ./...
# Embedders and plugin authors build on other systems: the core and the SDK
# must compile for them (the plugins and the CLI for macOS too, the CLI for
# Windows, where it is a client only).
GOOS=darwin go build ./core/... ./shared/... ./plugins/... ./cmd/...
GOOS=windows go build ./core/... ./shared/... ./cmd/...

step "building binaries"
make --no-print-directory build
export PTYHOST_BIN_DIR="$repo/bin"

step "go test -race"
log="$(mktemp)"
go test -race -count=1 -timeout 15m -cover ./... 2>&1 | tee "$log"

core_line="$(grep -E '^ok\s+github.com/ptyhost/ptyhost/core\s' "$log" || true)"
coverage="$(sed -nE 's/.*coverage: ([0-9.]+)% of statements.*/\1/p' <<<"$core_line")"
rm -f "$log"
if [ -z "$coverage" ]; then
  echo "could not read core's coverage" >&2
  exit 1
fi
if awk -v c="$coverage" -v m="$min_core_coverage" 'BEGIN { exit !(c < m) }'; then
  echo "core coverage ${coverage}% is below ${min_core_coverage}%" >&2
  exit 1
fi
echo "core coverage ${coverage}% (minimum ${min_core_coverage}%)" >&2

step "allocation tests, without the race detector"
# Under -race, sync.Pool drops what is put in it at random, so the tests
# that count the WebSocket's allocations per keystroke skip there and run
# here.
go test -count=1 -run 'NoAllocations' ./core/api
