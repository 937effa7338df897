#!/usr/bin/env bash
# sshd.sh — a throwaway OpenSSH server for ptyhost's SSH plugin tests.
#
#   sshd.sh start   install openssh-server if sshd is missing (apt-get, as
#                   root), create the test user and the keys if absent, start
#                   sshd if stopped, and print NAME=value lines on stdout:
#                     PTYHOST_TEST_SSH_HOST=127.0.0.1
#                     PTYHOST_TEST_SSH_PORT=22022
#                     PTYHOST_TEST_SSH_USER=ptyhost-test
#                     PTYHOST_TEST_SSH_KEY=<unencrypted ed25519 private key>
#                     PTYHOST_TEST_SSH_KEY_ENCRYPTED=<passphrase-protected key>
#                     PTYHOST_TEST_SSH_KEY_PASSPHRASE=<its passphrase>
#                     PTYHOST_TEST_SSH_PASSWORD=<the user's password>
#                     PTYHOST_TEST_SSH_HOST_KEY_PUB=<the server's public host key>
#                     PTYHOST_TEST_SSH_AUTHORIZED_KEYS=<the authorized_keys file>
#                     PTYHOST_TEST_SSHD_CONFIG=<the sshd_config>
#                     PTYHOST_TEST_SSHD=<absolute path of sshd>
#                     PTYHOST_TEST_SSHD_PID=<the daemon's pid>
#   sshd.sh env     print those lines if sshd is running (exit 1 if not)
#   sshd.sh stop    stop sshd and the connections it serves; no-op if stopped
#
# Usage from make or CI (two steps, so a failed start fails the recipe):
#   lines="$(scripts/services/sshd.sh start)" && while read -r l; do export "$l"; done <<<"$lines"
#
# State lives in ${PTYHOST_SERVICES_DIR:-<repo>/.services}/sshd: the host key,
# the client keys, the passphrase, sshd_config, the pid file and the log; the
# user's password, the machine's as the user is, in /var/lib/ptyhost-test-sshd. The server listens only on 127.0.0.1 (port 22022, or the next free
# one), lets in only the user ptyhost-test (public key or password; no PAM),
# and accepts the env requests LANG, LC_* and PTYHOST_TEST_* only, so tests
# can exercise both an accepted env request and the refusal fallback. It
# keeps OpenSSH's default MaxSessions (10 sessions per connection), which
# the plugin must work with (it opens more connections). It is
# for tests, never for anything that matters. Must run as root (it creates a
# user and runs sshd, which needs root for privilege separation). Everything
# but the NAME=value lines goes to stderr. Safe to run twice, from any cwd.
set -euo pipefail

readonly TEST_USER=ptyhost-test
readonly DEFAULT_PORT=22022
readonly DEADLINE_SECONDS=30

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="$(realpath -m "${PTYHOST_SERVICES_DIR:-$REPO/.services}/sshd")"
SERVICE=sshd.sh
# shellcheck source=lib.sh
. "$REPO/scripts/services/lib.sh"
readonly REPO STATE_DIR
readonly CONF="$STATE_DIR/sshd_config"
readonly PID_FILE="$STATE_DIR/sshd.pid"
readonly LOG_FILE="$STATE_DIR/sshd.log"
readonly HOST_KEY="$STATE_DIR/host_ed25519_key"
readonly CLIENT_KEY="$STATE_DIR/client_ed25519"
readonly CLIENT_KEY_ENC="$STATE_DIR/client_encrypted_ed25519"
# The test user is the machine's, not one state dir's: so is its password,
# which two instances (two clones' test runs) would otherwise set in turn,
# each failing the other's password tests.
readonly PASSWORD_DIR=/var/lib/ptyhost-test-sshd
readonly PASSWORD_FILE="$PASSWORD_DIR/password"
readonly PASSPHRASE_FILE="$STATE_DIR/passphrase"

# find_sshd prints the absolute path of sshd, or nothing.
find_sshd() {
	local p
	for p in "$(command -v sshd 2>/dev/null || true)" /usr/sbin/sshd /usr/local/sbin/sshd; do
		if [[ -n "$p" && -x "$p" ]]; then
			realpath "$p"
			return
		fi
	done
}

install_sshd() {
	log "sshd not found; installing the openssh-server package"
	command -v apt-get >/dev/null || die "sshd is missing and there is no apt-get: install OpenSSH's server"
	# Keep the package from starting the system's sshd (on port 22, on every
	# interface): invoke-rc.d and deb-systemd-invoke obey policy-rc.d.
	local policy=/usr/sbin/policy-rc.d added_policy=""
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		added_policy=1
	fi
	local rc=0
	{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server >&2; } || rc=$?
	if [[ -n "$added_policy" ]]; then rm -f "$policy"; fi
	((rc == 0)) || die "apt-get install openssh-server failed"
}

# random_secret prints 24 random alphanumeric characters.
random_secret() {
	local s
	s="$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
	[[ ${#s} -eq 24 ]] || die "could not generate a secret"
	echo "$s"
}

# secret_file prints the secret stored in $1, creating it first if absent.
secret_file() {
	if [[ ! -s "$1" ]]; then
		(umask 077 && random_secret >"$1")
	fi
	cat "$1"
}

setup_user() {
	if ! id -u "$TEST_USER" >/dev/null 2>&1; then
		log "creating user $TEST_USER"
		useradd --create-home --shell /bin/sh "$TEST_USER" >&2
	fi
	local home
	home="$(getent passwd "$TEST_USER" | cut -d: -f6)"
	if [[ ! -d "$home" ]]; then
		mkdir -p "$home"
		chown "$TEST_USER:" "$home"
	fi
	# Password authentication without PAM checks /etc/shadow.
	(umask 077 && mkdir -p "$PASSWORD_DIR")
	printf '%s:%s\n' "$TEST_USER" "$(secret_file "$PASSWORD_FILE")" | chpasswd
}

# pick_auth_dir sets AUTH_DIR, which holds authorized_keys: sshd reads that
# file as the user, so it must be reachable by ptyhost-test. The state dir
# if it is (a repo under /work), else a directory under /var/tmp named after
# the state dir (a repo under /root).
pick_auth_dir() {
	AUTH_DIR="$STATE_DIR"
	if ! runuser -u "$TEST_USER" -- test -r "$STATE_DIR" -a -x "$STATE_DIR" 2>/dev/null; then
		AUTH_DIR="/var/tmp/ptyhost-sshd-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)"
		mkdir -p "$AUTH_DIR"
		chmod 0755 "$AUTH_DIR"
	fi
	AUTHORIZED_KEYS="$AUTH_DIR/authorized_keys"
}

setup_keys() {
	if [[ ! -f "$HOST_KEY" ]]; then
		log "generating the host key"
		ssh-keygen -q -t ed25519 -N '' -C "ptyhost-test-host" -f "$HOST_KEY" >&2
	fi
	if [[ ! -f "$CLIENT_KEY" ]]; then
		log "generating the client key"
		ssh-keygen -q -t ed25519 -N '' -C "ptyhost-test-client" -f "$CLIENT_KEY" >&2
	fi
	if [[ ! -f "$CLIENT_KEY_ENC" ]]; then
		log "generating the passphrase-protected client key"
		ssh-keygen -q -t ed25519 -N "$(secret_file "$PASSPHRASE_FILE")" -C "ptyhost-test-client-encrypted" -f "$CLIENT_KEY_ENC" >&2
	fi
	chmod 0600 "$HOST_KEY" "$CLIENT_KEY" "$CLIENT_KEY_ENC"
	pick_auth_dir
	# Rewritten on every start: tests may have added keys to it.
	cat "$CLIENT_KEY.pub" "$CLIENT_KEY_ENC.pub" >"$AUTHORIZED_KEYS"
	chmod 0644 "$AUTHORIZED_KEYS"
	chmod 0755 "$STATE_DIR"
}

write_config() {
	local port=$1
	cat >"$CONF" <<-EOF
		# ptyhost test sshd: loopback only, one user, for tests.
		ListenAddress 127.0.0.1
		Port $port
		HostKey "$HOST_KEY"
		PidFile "$PID_FILE"
		AuthorizedKeysFile "$AUTHORIZED_KEYS"
		AllowUsers $TEST_USER
		PermitRootLogin no
		PubkeyAuthentication yes
		PasswordAuthentication yes
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		AcceptEnv LANG LC_* PTYHOST_TEST_*
		PermitUserEnvironment no
		AllowTcpForwarding yes
		X11Forwarding no
		PrintMotd no
		PrintLastLog no
		UseDNS no
		MaxStartups 200
		MaxAuthTries 10
		LoginGraceTime 30
		LogLevel VERBOSE
	EOF
	# OpenSSH 9.8+ slows down a source address after failed logins, which
	# the tests' wrong-key and wrong-password cases would trip.
	if "$SSHD" -t -f "$CONF" -o PerSourcePenalties=no 2>/dev/null; then
		echo "PerSourcePenalties no" >>"$CONF"
	fi
	"$SSHD" -t -f "$CONF" >&2 || die "sshd rejects $CONF"
}

# daemon_pid prints the pid of our running sshd; it fails if none runs.
daemon_pid() {
	local pid
	[[ -s "$PID_FILE" ]] || return 1
	pid="$(cat "$PID_FILE")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	# The pid must still be an sshd started with our config.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $CONF" || return 1
	echo "$pid"
}

current_port() { sed -n 's/^Port //p' "$CONF"; }

start_server() {
	local port attempt
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
	for attempt in 1 2 3; do
		port="$(free_port)"
		write_config "$port"
		rm -f "$PID_FILE"
		log "starting sshd on 127.0.0.1:$port"
		if "$SSHD" -f "$CONF" -E "$LOG_FILE" 9>&- && wait_ready "$port"; then
			return
		fi
		log "start attempt $attempt failed; log:"
		tail -n 20 "$LOG_FILE" >&2 || true
	done
	die "could not start sshd (log: $LOG_FILE)"
}

# wait_ready waits, up to the deadline, until sshd has written its pid and
# answers ssh-keyscan on port $1.
wait_ready() {
	local port=$1 deadline=$((SECONDS + DEADLINE_SECONDS))
	until daemon_pid >/dev/null && ssh-keyscan -T 2 -p "$port" 127.0.0.1 2>/dev/null | grep -q ssh-ed25519; do
		((SECONDS < deadline)) || { log "sshd on port $port not ready after ${DEADLINE_SECONDS}s"; return 1; }
		sleep 0.1
	done
}

print_env() {
	pick_auth_dir
	cat <<-EOF
		PTYHOST_TEST_SSH_HOST=127.0.0.1
		PTYHOST_TEST_SSH_PORT=$(current_port)
		PTYHOST_TEST_SSH_USER=$TEST_USER
		PTYHOST_TEST_SSH_KEY=$CLIENT_KEY
		PTYHOST_TEST_SSH_KEY_ENCRYPTED=$CLIENT_KEY_ENC
		PTYHOST_TEST_SSH_KEY_PASSPHRASE=$(cat "$PASSPHRASE_FILE")
		PTYHOST_TEST_SSH_PASSWORD=$(cat "$PASSWORD_FILE")
		PTYHOST_TEST_SSH_HOST_KEY_PUB=$HOST_KEY.pub
		PTYHOST_TEST_SSH_AUTHORIZED_KEYS=$AUTHORIZED_KEYS
		PTYHOST_TEST_SSHD_CONFIG=$CONF
		PTYHOST_TEST_SSHD=$SSHD
		PTYHOST_TEST_SSHD_PID=$(daemon_pid)
	EOF
}

require_root() {
	[[ "$(id -u)" == 0 ]] || die "run as root: it creates the user $TEST_USER and runs sshd, which needs root"
}

cmd_start() {
	require_root
	SSHD="$(find_sshd)"
	if [[ -z "$SSHD" ]]; then
		install_sshd
		SSHD="$(find_sshd)"
		[[ -n "$SSHD" ]] || die "openssh-server installed but no sshd found"
	fi
	command -v ssh-keygen >/dev/null || die "ssh-keygen is missing (openssh-client)"
	lock
	setup_user
	setup_keys
	if ! daemon_pid >/dev/null; then
		start_server
	else
		wait_ready "$(current_port)" || die "sshd runs but does not answer (log: $LOG_FILE)"
	fi
	print_env
}

# children prints the pids of the processes whose parent is $1, from /proc
# ("pid (comm) state ppid ..."; comm may hold spaces and parentheses).
children() {
	local parent=$1 f line fields
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue
		read -ra fields <<<"${line##*) }"
		if [[ "${fields[1]:-}" == "$parent" ]]; then
			f="${f#/proc/}"
			echo "${f%/stat}"
		fi
	done
}

# alive reports whether process $1 exists and is not a zombie (a daemon's
# parent is init, which may be slow to reap it).
alive() {
	local line fields
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -ra fields <<<"${line##*) }"
	[[ "${fields[0]}" != Z ]]
}

cmd_stop() {
	lock
	local pid kids
	if ! pid="$(daemon_pid)"; then
		log "no sshd running for $STATE_DIR; nothing to stop"
		return
	fi
	# The per-connection processes outlive the listener; end them too.
	mapfile -t kids < <(children "$pid")
	log "stopping sshd $pid${kids[*]:+ and its connections ${kids[*]}}"
	kill -TERM "$pid" "${kids[@]}" 2>/dev/null || true
	local deadline=$((SECONDS + DEADLINE_SECONDS))
	while alive "$pid"; do
		((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; break; }
		sleep 0.1
	done
	rm -f "$PID_FILE"
}

cmd_env() {
	SSHD="$(find_sshd)"
	if [[ -f "$CONF" ]] && daemon_pid >/dev/null; then
		print_env
		return
	fi
	die "sshd is not running: run $0 start"
}

main "$@"
