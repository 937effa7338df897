# lib.sh — what the service scripts (docker.sh, postgres.sh, sshd.sh) share.
# Sourced, not run: the script sets SERVICE (its name, for messages),
# STATE_DIR and DEADLINE_SECONDS, and DEFAULT_PORT if it calls free_port,
# defines cmd_start, cmd_stop and cmd_env, and ends with: main "$@".

log() { printf '%s: %s\n' "$SERVICE" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

is_root() { [[ "$(id -u)" == 0 ]]; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints the first port from DEFAULT_PORT on that nothing listens
# on at 127.0.0.1.
free_port() {
	local p
	for ((p = DEFAULT_PORT; p < DEFAULT_PORT + 100; p++)); do
		if ! port_busy "$p"; then
			echo "$p"
			return
		fi
	done
	die "no free port in $DEFAULT_PORT..$((DEFAULT_PORT + 99)) on 127.0.0.1"
}

# lock serialises the script's runs on one state directory (fd 9).
lock() {
	mkdir -p "$STATE_DIR"
	exec 9>>"$STATE_DIR/.lock"
	flock -w "$DEADLINE_SECONDS" 9 || die "another $SERVICE holds $STATE_DIR/.lock"
}

main() {
	case "${1:-}" in
	start) cmd_start ;;
	stop) cmd_stop ;;
	env) cmd_env ;;
	*)
		echo "usage: $0 start|stop|env" >&2
		exit 2
		;;
	esac
}
