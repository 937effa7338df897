#!/usr/bin/env bash
# bench.sh — what `make bench` runs: build, start the Docker daemon and the
# sshd that the bench's DOCKER and SSH paths run against, and the PostgreSQL
# its cluster path runs two nodes on, and run the bench
# (internal/bench; see docs/performance.md) with this script's arguments:
#
#   scripts/bench.sh [--runs N] [--bytes SIZE] [--remote-bytes SIZE] [--json] ...
#   scripts/bench.sh --soak 30m [--soak-sessions 200]   # the soak alone
#
# The soak uses only the HOST path, so with --soak the services are not
# started.
#
# A service that cannot start does not stop the bench: the HOST part runs
# and the path's lines say why it was skipped (PTYHOST_BENCH_SKIP_DOCKER /
# PTYHOST_BENCH_SKIP_SSH carry the reason). The services this script started
# are stopped on exit, whatever happened; those that were already running
# (another `make test`, say) are left running.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

export PTYHOST_SERVICES_DIR="${PTYHOST_SERVICES_DIR:-$repo/.services}"

step() { printf '\n== %s\n' "$*" >&2; }

# export_lines exports every NAME=value line of its input.
export_lines() {
  local line
  while IFS= read -r line; do
    [ -n "$line" ] && export "${line?}"
  done
}

started=()
stop_services() {
  local name
  for name in ${started[@]+"${started[@]}"}; do
    step "stopping $name"
    "scripts/services/$name.sh" stop || true
  done
}
trap stop_services EXIT

# start_service NAME SKIP_VAR starts scripts/services/NAME.sh and exports
# its lines; if it fails, it exports SKIP_VAR with the reason instead.
start_service() {
  local name=$1 skip_var=$2 script="scripts/services/$1.sh" errors lines reason
  local was_running=""
  if "$script" env >/dev/null 2>&1; then
    was_running=1
  fi
  errors="$(mktemp)"
  if lines="$("$script" start 2>"$errors")"; then
    cat "$errors" >&2
    export_lines <<<"$lines"
    if [ -z "$was_running" ]; then
      started+=("$name")
    fi
  else
    cat "$errors" >&2
    reason="$(grep -v '^[[:space:]]*$' "$errors" | tail -n 1 || true)"
    reason="${reason#"$name.sh: "}"
    reason="${reason#error: }"
    export "$skip_var=$script start failed: ${reason:-no message}"
    printf '%s: could not start; the bench skips its path\n' "$name" >&2
    # It may have started something before it failed.
    if [ -z "$was_running" ]; then
      started+=("$name")
    fi
  fi
  rm -f "$errors"
}

step "building binaries"
make --no-print-directory build >&2 # stdout is the bench's alone (--json)

soak=""
for arg in "$@"; do
  case "$arg" in
    --soak | --soak=* | -soak | -soak=*) soak=1 ;;
  esac
done

if [ -z "$soak" ]; then
  step "starting Docker"
  start_service docker PTYHOST_BENCH_SKIP_DOCKER

  step "starting sshd"
  start_service sshd PTYHOST_BENCH_SKIP_SSH

  step "starting PostgreSQL (two nodes of a cluster)"
  start_service postgres PTYHOST_BENCH_SKIP_POSTGRES
fi

step "bench"
go run ./internal/bench --bin bin "$@"
