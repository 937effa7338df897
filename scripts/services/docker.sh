#!/usr/bin/env bash
# docker.sh — a Docker daemon and a test image for ptyhost's DOCKER tests.
#
#   docker.sh start   install Debian's docker.io if dockerd is missing (apt-get,
#                     as root); use the daemon that answers at $DOCKER_HOST, at
#                     our own socket or at /var/run/docker.sock, else start our
#                     own dockerd; build the test image ptyhost-test:latest if
#                     absent; print two lines on stdout:
#                       DOCKER_HOST=unix://…
#                       PTYHOST_TEST_DOCKER_IMAGE=ptyhost-test:latest
#   docker.sh env     print those lines if a daemon answers (exit 1 if not)
#   docker.sh stop    stop the dockerd this script started (never another
#                     one); no-op if it is not running
#
# Usage from make or CI (every stdout line is NAME=value):
#   out="$(scripts/services/docker.sh start)" &&
#     while read -r line; do export "$line"; done <<<"$out"
#
# Our own daemon keeps its state in ${PTYHOST_SERVICES_DIR:-<repo>/.services}/
# docker: data-root, pid file and log (dockerd.log). Its exec-root and socket
# live in a short directory under /tmp (unix socket paths are limited to 107
# bytes and containerd's socket sits deep in the exec-root), recorded in
# run_dir. What works in a sandbox without systemd or a network (Debian 12,
# Engine 20.10, cgroup v1, ext4):
#   --iptables=false --ip6tables=false   no netfilter setup (it may be absent)
#   --bridge=none                        no docker0 to create or share with a
#                                        system daemon; containers get only
#                                        loopback (the tests need no network)
#   storage driver                       dockerd's own choice: overlay2 on ext4,
#                                        vfs where overlay cannot nest
# PTYHOST_DOCKERD_FLAGS adds flags (for example --storage-driver=vfs).
#
# The test image is assembled from Debian's busybox-static (nothing can be
# pulled): /bin/sh and every busybox applet, /etc/passwd with root and user
# (uid 1000), /tmp, imported with `docker import`. PTYHOST_TEST_DOCKER_IMAGE
# names another image (it is built under that name if absent).
#
# Everything but the NAME=value lines goes to stderr. Safe to run twice, from
# any cwd.
set -euo pipefail

readonly DEADLINE_SECONDS=60
readonly DEFAULT_SOCKET=/var/run/docker.sock

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="$(realpath -m "${PTYHOST_SERVICES_DIR:-$REPO/.services}/docker")"
SERVICE=docker.sh
# shellcheck source=lib.sh
. "$REPO/scripts/services/lib.sh"
IMAGE="${PTYHOST_TEST_DOCKER_IMAGE:-ptyhost-test:latest}"
readonly REPO STATE_DIR IMAGE

# as_root runs a command as root (directly, or with sudo -n).
as_root() {
	if is_root; then
		"$@"
	else
		command -v sudo >/dev/null || die "need root for: $*"
		sudo -n "$@"
	fi
}

apt_install() {
	log "installing $* (apt-get)"
	as_root apt-get update >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# run_dir prints the directory of our daemon's socket and exec-root, creating
# the record on first use.
run_dir() {
	if [[ ! -f "$STATE_DIR/run_dir" ]]; then
		mkdir -p "$STATE_DIR"
		echo "/tmp/ptyhost-docker-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)" >"$STATE_DIR/run_dir"
	fi
	cat "$STATE_DIR/run_dir"
}

# answers reports whether a daemon answers at the given DOCKER_HOST.
answers() {
	DOCKER_HOST="$1" timeout 10 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

# our_pid prints the pid of the dockerd we started, if it still runs (a
# zombie does not count: nothing may reap it where pid 1 does not).
our_pid() {
	local pidfile pid state
	pidfile="$(run_dir)/dockerd.pid"
	# dockerd removes the file as it exits: gone between a look and a
	# read is gone.
	pid="$(cat "$pidfile" 2>/dev/null)" || return 1
	[[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
	state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat")"
	[[ "$state" != Z ]] || return 1
	grep -q dockerd "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

start_dockerd() {
	local dir sock
	dir="$(run_dir)"
	sock="unix://$dir/docker.sock"
	mkdir -p "$STATE_DIR/data" "$dir/exec"
	chmod 0711 "$dir"
	# Engine 20.10 here keeps a network sandbox in its store for every
	# container it ever removed, and at the next start removes them one by
	# one, about 0.25 s each: after a few hundred test containers it does
	# not answer within the deadline. With --bridge=none the store holds
	# nothing else worth keeping (the predefined networks come back).
	rm -f "$STATE_DIR/data/network/files/local-kv.db"
	log "starting dockerd on $sock (data-root $STATE_DIR/data, log $STATE_DIR/dockerd.log)"
	# setsid: the daemon outlives this script and is in no job of the caller.
	# shellcheck disable=SC2086
	setsid dockerd \
		--data-root "$STATE_DIR/data" \
		--exec-root "$dir/exec" \
		--pidfile "$dir/dockerd.pid" \
		--host "$sock" \
		--iptables=false --ip6tables=false --bridge=none \
		${PTYHOST_DOCKERD_FLAGS:-} \
		</dev/null >>"$STATE_DIR/dockerd.log" 2>&1 9>&- &
	local deadline=$((SECONDS + DEADLINE_SECONDS))
	until answers "$sock"; do
		if ((SECONDS >= deadline)); then
			tail -n 30 "$STATE_DIR/dockerd.log" >&2 || true
			die "dockerd did not answer on $sock within ${DEADLINE_SECONDS}s (log: $STATE_DIR/dockerd.log)"
		fi
		sleep 0.2
	done
	log "dockerd is up: $(DOCKER_HOST="$sock" docker info --format 'Engine {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}' 2>/dev/null)"
}

# pick_daemon sets HOST_URL to a daemon that answers, starting ours if none.
pick_daemon() {
	local ours
	ours="unix://$(run_dir)/docker.sock"
	if [[ -n "${DOCKER_HOST:-}" ]] && answers "$DOCKER_HOST"; then
		HOST_URL="$DOCKER_HOST"
	elif answers "$ours"; then
		HOST_URL="$ours"
	elif [[ -S "$DEFAULT_SOCKET" ]] && answers "unix://$DEFAULT_SOCKET"; then
		HOST_URL="unix://$DEFAULT_SOCKET"
	else
		start_dockerd
		HOST_URL="$ours"
	fi
}

# static_busybox prints the path of a statically linked busybox, installing
# busybox-static if there is none.
static_busybox() {
	local bb=/bin/busybox
	if [[ ! -x "$bb" ]] || ldd "$bb" >/dev/null 2>&1; then
		apt_install busybox-static
	fi
	if [[ ! -x "$bb" ]] || ldd "$bb" >/dev/null 2>&1; then
		die "$bb is not a static busybox"
	fi
	echo "$bb"
}

build_image() {
	if DOCKER_HOST="$HOST_URL" docker image inspect "$IMAGE" >/dev/null 2>&1; then
		return
	fi
	local bb root applet
	bb="$(static_busybox)"
	root="$(mktemp -d)"
	# shellcheck disable=SC2064
	trap "rm -rf '$root'" EXIT
	mkdir -p "$root"/{bin,etc,root,tmp,home/user,workspace,dev,proc,sys}
	cp "$bb" "$root/bin/busybox"
	for applet in $("$bb" --list); do
		[[ "$applet" == busybox || -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
	done
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'user:x:1000:1000:user:/home/user:/bin/sh' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'user:x:1000:' >"$root/etc/group"
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	chown 1000:1000 "$root/home/user" 2>/dev/null || true
	log "building $IMAGE from $bb ($(find "$root/bin" -mindepth 1 | wc -l) entries in /bin)"
	tar -C "$root" --numeric-owner -c . |
		DOCKER_HOST="$HOST_URL" docker import \
			-c 'CMD ["/bin/sh"]' \
			-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			- "$IMAGE" >&2
	rm -rf "$root"
	trap - EXIT
}

print_env() {
	echo "DOCKER_HOST=$HOST_URL"
	echo "PTYHOST_TEST_DOCKER_IMAGE=$IMAGE"
}

cmd_start() {
	if ! command -v dockerd >/dev/null; then
		apt_install docker.io
	fi
	command -v docker >/dev/null || die "no docker command after installing docker.io"
	if ! command -v docker-registry >/dev/null; then
		# Optional: the image-pull test runs a local registry with it.
		apt_install docker-registry || log "docker-registry not installed; the pull test will be skipped"
	fi
	lock
	pick_daemon
	build_image
	print_env
}

cmd_stop() {
	[[ -f "$STATE_DIR/run_dir" ]] || {
		log "no dockerd of ours in $STATE_DIR; nothing to stop"
		return
	}
	lock
	local pid
	if ! pid="$(our_pid)"; then
		log "our dockerd is not running"
		return
	fi
	log "stopping dockerd (pid $pid)"
	kill -TERM "$pid"
	local deadline=$((SECONDS + DEADLINE_SECONDS))
	while our_pid >/dev/null; do
		if ((SECONDS >= deadline)); then
			log "dockerd did not stop within ${DEADLINE_SECONDS}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
}

cmd_env() {
	HOST_URL=""
	local ours
	ours="unix://$(run_dir)/docker.sock"
	if [[ -n "${DOCKER_HOST:-}" ]] && answers "$DOCKER_HOST"; then
		HOST_URL="$DOCKER_HOST"
	elif answers "$ours"; then
		HOST_URL="$ours"
	elif [[ -S "$DEFAULT_SOCKET" ]] && answers "unix://$DEFAULT_SOCKET"; then
		HOST_URL="unix://$DEFAULT_SOCKET"
	fi
	[[ -n "$HOST_URL" ]] || die "no Docker daemon answers: run $0 start"
	print_env
}

main "$@"
