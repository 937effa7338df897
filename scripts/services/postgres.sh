#!/usr/bin/env bash
# postgres.sh — a throwaway PostgreSQL cluster for ptyhost's tests.
#
#   postgres.sh start   install PostgreSQL if missing (apt-get, as root), create
#                       the cluster if absent, start it if stopped, create the
#                       database ptyhost_test, and print one line on stdout:
#                         PTYHOST_TEST_POSTGRES_DSN=postgres://…
#   postgres.sh env     print that line if the cluster is running (exit 1 if not)
#   postgres.sh stop    stop the cluster (pg_ctl stop -m fast); no-op if stopped
#
# Usage from make or CI (two steps, so a failed start fails the recipe):
#   line="$(scripts/services/postgres.sh start)" && export "$line"
#
# State lives in ${PTYHOST_SERVICES_DIR:-<repo>/.services}/postgres: the data
# directory, the unix socket and the server log. The server listens only on
# 127.0.0.1 (port 54329, or the next free one) and trusts loopback and
# unix-socket connections: it is for tests, never for data that matters.
# Everything but the DSN line goes to stderr. Safe to run twice, from any cwd.
set -euo pipefail

readonly DB_NAME=ptyhost_test
readonly SUPERUSER=postgres
readonly DEFAULT_PORT=54329
readonly DEADLINE_SECONDS=60

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="$(realpath -m "${PTYHOST_SERVICES_DIR:-$REPO/.services}/postgres")"
SERVICE=postgres.sh
# shellcheck source=lib.sh
. "$REPO/scripts/services/lib.sh"
readonly REPO STATE_DIR

# find_bindir prints the newest /usr/lib/postgresql/*/bin holding the server,
# or the directory of initdb on PATH; nothing if there is none.
find_bindir() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
			echo "$d"
			return
		fi
	done
	if d="$(command -v initdb 2>/dev/null)" && [[ -x "$(dirname "$d")/pg_ctl" ]]; then
		dirname "$(realpath "$d")"
	fi
}

install_postgres() {
	log "PostgreSQL server binaries not found; installing the postgresql package"
	local sudo=()
	if ! is_root; then
		command -v sudo >/dev/null || die "PostgreSQL is not installed and we are not root: install the postgresql package"
		sudo=(sudo -n)
	fi
	"${sudo[@]}" apt-get update >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# pick_user sets RUN_USER: postgres refuses to run as root, so as root the
# cluster belongs to the postgres system user (or a dedicated one).
pick_user() {
	RUN_USER="$(id -un)"
	is_root || return 0
	if id -u postgres >/dev/null 2>&1; then
		RUN_USER=postgres
	else
		RUN_USER=ptyhost-postgres
		if ! id -u "$RUN_USER" >/dev/null 2>&1; then
			log "creating system user $RUN_USER"
			useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER" >&2
		fi
	fi
}

# as_user runs a command as RUN_USER.
as_user() {
	if is_root; then
		runuser -u "$RUN_USER" -- "$@"
	else
		"$@"
	fi
}

# pick_run_dir sets RUN_DIR, which holds the data directory, socket and log:
# the state dir, unless RUN_USER cannot reach it (a repo under /root) or a
# socket path there would pass the 107-byte limit; then a directory under
# /var/tmp named after the state dir. The choice is recorded in the state dir.
pick_run_dir() {
	if [[ -f "$STATE_DIR/run_dir" ]]; then
		RUN_DIR="$(cat "$STATE_DIR/run_dir")"
		return
	fi
	RUN_DIR="$STATE_DIR"
	if ((${#STATE_DIR} > 90)) || ! as_user test -w "$STATE_DIR"; then
		RUN_DIR="/var/tmp/ptyhost-postgres-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)"
		log "$STATE_DIR is not usable by $RUN_USER for a data dir and socket; using $RUN_DIR"
	fi
	echo "$RUN_DIR" >"$STATE_DIR/run_dir"
}

setup_dirs() {
	mkdir -p "$STATE_DIR"
	if is_root; then chown "$RUN_USER" "$STATE_DIR"; fi
	pick_run_dir
	mkdir -p "$RUN_DIR"
	if is_root; then chown "$RUN_USER" "$RUN_DIR"; fi
	chmod 0700 "$RUN_DIR"
	DATA="$RUN_DIR/data"
}

# running reports whether the cluster's postmaster is alive.
running() {
	[[ -f "$DATA/PG_VERSION" ]] && as_user "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# current_port prints the running cluster's port, from postmaster.pid.
current_port() { sed -n 4p "$DATA/postmaster.pid"; }

init_cluster() {
	local major
	major="$("$BINDIR/postgres" --version | awk '{ split($3, v, "."); print v[1] }')"
	if [[ -f "$DATA/PG_VERSION" && "$(cat "$DATA/PG_VERSION")" == "$major" ]]; then
		return
	fi
	if [[ -e "$DATA" ]]; then
		log "discarding $DATA: not a PostgreSQL $major cluster"
		rm -rf "$DATA"
	fi
	log "creating cluster in $DATA"
	as_user "$BINDIR/initdb" -D "$DATA" -U "$SUPERUSER" --auth=trust \
		--encoding=UTF8 --no-locale >"$RUN_DIR/initdb.log" 2>&1 ||
		{ cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
	# Trust the unix socket and loopback only: this cluster is for tests.
	as_user tee "$DATA/pg_hba.conf" >/dev/null <<-'EOF'
		# ptyhost test cluster: trust local connections only.
		local all all              trust
		host  all all 127.0.0.1/32 trust
	EOF
}

start_server() {
	local port attempt
	for attempt in 1 2 3; do
		port="$(free_port)"
		log "starting PostgreSQL on 127.0.0.1:$port"
		if as_user "$BINDIR/pg_ctl" start -D "$DATA" -l "$RUN_DIR/server.log" -w -t "$DEADLINE_SECONDS" \
			-o "-c listen_addresses=127.0.0.1 -p $port -k '$RUN_DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
			9>&- \
			>&2; then
			return
		fi
		log "start attempt $attempt failed; server log:"
		tail -n 20 "$RUN_DIR/server.log" >&2 || true
	done
	die "could not start PostgreSQL (log: $RUN_DIR/server.log)"
}

# wait_ready waits, up to the deadline, until the server accepts queries.
wait_ready() {
	local port=$1 deadline=$((SECONDS + DEADLINE_SECONDS))
	until "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres; do
		((SECONDS < deadline)) || die "PostgreSQL on port $port not ready after ${DEADLINE_SECONDS}s"
		sleep 0.2
	done
}

psql_admin() {
	"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$SUPERUSER" -d postgres -tA -c "$2"
}

create_database() {
	local port=$1
	if [[ "$(psql_admin "$port" "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
		log "creating database $DB_NAME"
		psql_admin "$port" "CREATE DATABASE $DB_NAME" >&2
	fi
}

print_dsn() {
	echo "PTYHOST_TEST_POSTGRES_DSN=postgres://$SUPERUSER@127.0.0.1:$1/$DB_NAME?sslmode=disable"
}

cmd_start() {
	BINDIR="$(find_bindir)"
	if [[ -z "$BINDIR" ]]; then
		install_postgres
		BINDIR="$(find_bindir)"
		[[ -n "$BINDIR" ]] || die "postgresql installed but no server binaries under /usr/lib/postgresql/*/bin"
	fi
	pick_user
	lock
	setup_dirs
	if ! running; then
		init_cluster
		start_server
	fi
	local port
	port="$(current_port)"
	wait_ready "$port"
	create_database "$port"
	print_dsn "$port"
}

# find_existing sets BINDIR, RUN_USER and DATA for stop and env; it returns 1
# when there is no cluster to talk to.
find_existing() {
	BINDIR="$(find_bindir)"
	[[ -n "$BINDIR" && -f "$STATE_DIR/run_dir" ]] || return 1
	pick_user
	RUN_DIR="$(cat "$STATE_DIR/run_dir")"
	DATA="$RUN_DIR/data"
}

cmd_stop() {
	if ! find_existing; then
		log "no cluster in $STATE_DIR; nothing to stop"
		return
	fi
	lock
	if ! running; then
		log "PostgreSQL in $DATA is not running"
		return
	fi
	log "stopping PostgreSQL in $DATA"
	as_user "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t "$DEADLINE_SECONDS" >&2
}

cmd_env() {
	if find_existing && running; then
		print_dsn "$(current_port)"
		return
	fi
	die "PostgreSQL is not running: run $0 start"
}

main "$@"
