package main

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ptyhost/ptyhost/shared"
)

// The remote command line.
//
// An SSH "exec" request carries one string, which the server runs with the
// user's login shell as `$SHELL -c STRING`. ptyhost builds that string from
// the session's parts, quoting every one of them as a single POSIX shell
// word, so no directory, argument or value can inject shell syntax:
//
//	export K='v'; cd -- '/dir' || { printf '<nodir marker>'; exit 1; };
//	command -v -- 'prog' >/dev/null 2>&1 || { printf '<nocmd marker>'; exit 127; };
//	printf '<ok marker>' "$$"; exec 'prog' 'arg 1' 'it'\''s'
//
// The markers are OSC escape sequences with a random nonce, which Spawn
// reads (and removes) from the output: Spawn returns once the command is
// about to run, and knows the remote process group to signal (the ok
// marker carries the shell's pid), and a missing directory or command is a clear error rather
// than a session that dies at once. The export part holds only the
// variables whose env requests the server refused. With no command, the
// session runs the configured shell, or the user's login shell ($SHELL), as
// a login shell (-l), as `ssh host` would. The remote login shell must be
// POSIX-compatible (sh, dash, bash, zsh, ksh, busybox sh).

// Marker statuses.
const (
	markOK    = "ok"
	markNoDir = "nodir"
	markNoCmd = "nocmd"
)

// marker is the escape sequence the remote prints for status. The ok
// marker carries one more field, the remote shell's pid (okMarker).
func marker(status, nonce string) string {
	return "\x1b]ptyhost;" + status + ";" + nonce + "\x07"
}

// printMarker is the shell command that prints marker(status, nonce).
func printMarker(status, nonce string) string {
	return `printf '\033]ptyhost;` + status + ";" + nonce + `\007'`
}

// okMarkerPrefix is the ok marker up to its pid field.
func okMarkerPrefix(nonce string) string {
	return "\x1b]ptyhost;" + markOK + ";" + nonce + ";"
}

// okMarker is the ok marker of a remote shell with the given pid.
func okMarker(nonce string, pid int) string {
	return okMarkerPrefix(nonce) + strconv.Itoa(pid) + "\x07"
}

// printOKMarker is the shell command that prints the ok marker with the
// shell's pid ($$). The command then runs as that pid (exec), and sshd
// made that process a session leader when it set up the terminal, so the
// pid is also the session's process group and session id, which Kill
// signals (session.go).
func printOKMarker(nonce string) string {
	return `printf '\033]ptyhost;` + markOK + ";" + nonce + `;%s\007' "$$"`
}

// quote returns s as one POSIX shell word: s in single quotes, inside which
// nothing is special, with each single quote of s closed, escaped and
// reopened:
//
//	it's → 'it'\''s'
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// remoteScript is what a session runs on the remote host.
type remoteScript struct {
	unset   []string          // variables to unset (SpawnRequest.UnsetEnv), checked identifiers
	exports map[string]string // variables to export (refused env requests)
	dir     string            // "" = the login directory (home)
	argv    []string          // empty = a login shell
	shell   string            // the config's shell; "" = $SHELL
	nonce   string
}

// String builds the command line.
func (s remoteScript) String() string {
	var b strings.Builder
	if len(s.unset) > 0 {
		// The login's own variables (its profile's, sshd's) are the
		// remote's; the names are checked identifiers.
		b.WriteString("unset -v " + strings.Join(s.unset, " ") + "; ")
	}
	if len(s.exports) > 0 {
		b.WriteString("export")
		for _, k := range slices.Sorted(maps.Keys(s.exports)) {
			// k is a checked identifier; the value is quoted.
			b.WriteString(" " + k + "=" + quote(s.exports[k]))
		}
		b.WriteString("; ")
	}
	if s.dir != "" {
		fmt.Fprintf(&b, "cd -- %s || { %s; exit 1; }; ", dirWord(s.dir), printMarker(markNoDir, s.nonce))
	}
	prog := s.shell
	if len(s.argv) > 0 {
		prog = s.argv[0]
	}
	if prog != "" {
		fmt.Fprintf(&b, "command -v -- %s >/dev/null 2>&1 || { %s; exit 127; }; ", quote(prog), printMarker(markNoCmd, s.nonce))
	}
	b.WriteString(printOKMarker(s.nonce) + "; exec")
	switch {
	case len(s.argv) > 0:
		for _, a := range s.argv {
			b.WriteString(" " + quote(a))
		}
	case s.shell != "":
		b.WriteString(" " + quote(s.shell) + " -l")
	default:
		b.WriteString(` "${SHELL:-/bin/sh}" -l`)
	}
	return b.String()
}

// dirWord is the shell word for a checked directory: quoted, but for a
// leading ~ (the remote user's home), which must stay bare to expand.
func dirWord(dir string) string {
	switch {
	case dir == "~":
		return "~"
	case strings.HasPrefix(dir, "~/"):
		if rest := dir[2:]; rest != "" {
			return "~/" + quote(rest)
		}
		return "~/"
	default:
		return quote(dir)
	}
}

// checkDir accepts an absolute path on the remote host, or one starting at
// the remote user's home ("~", "~/..."); empty means the home.
func checkDir(dir string) error {
	switch {
	case dir == "":
		return nil
	case strings.ContainsRune(dir, 0):
		return fmt.Errorf("%w: working directory %q contains NUL", shared.ErrInvalidArgument, dir)
	case dir == "~", strings.HasPrefix(dir, "~/"), path.IsAbs(dir):
		return nil
	default:
		return fmt.Errorf("%w: working directory %q is not an absolute path (or ~/...) on the remote host", shared.ErrInvalidArgument, dir)
	}
}

// checkArgv rejects a command the remote shell cannot run as given.
func checkArgv(argv []string) error {
	if len(argv) == 0 {
		return nil
	}
	if argv[0] == "" {
		return fmt.Errorf("%w: command: empty program name", shared.ErrInvalidArgument)
	}
	if strings.HasPrefix(argv[0], "-") {
		return fmt.Errorf("%w: command: program name %q starts with '-'", shared.ErrInvalidArgument, argv[0])
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%w: command: argument %q contains NUL", shared.ErrInvalidArgument, a)
		}
	}
	return nil
}
