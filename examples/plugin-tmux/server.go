package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// waitDelay bounds how long a finished tmux command may keep its output
// pipes open (the server it starts daemonizes and lets go of them).
const waitDelay = time.Second

// errNoSession: the tmux session, or its whole tmux server, does not exist.
var errNoSession = errors.New("no such tmux session")

// errDuplicate: a tmux session by that name exists already.
var errDuplicate = errors.New("duplicate tmux session")

// errServerExited: the tmux server exited while the command ran. It wraps
// errNoSession: no session is left on a server that exited.
var errServerExited = fmt.Errorf("tmux server exited: %w", errNoSession)

// tmuxServer runs tmux commands against one tmux server, `tmux -L socket`.
// A server this plugin starts reads no configuration file (-f /dev/null),
// so that a user's ~/.tmux.conf cannot change how sessions behave; a server
// that already runs keeps its options, and each session sets the few it
// depends on (see newSessionArgs).
type tmuxServer struct {
	socket string
	// env is the environment of every tmux process: the plugin's own,
	// without go-plugin's and ptyhost's variables and without $TMUX (a
	// plugin started inside tmux must not nest).
	env []string
}

// command returns `tmux -L socket -f /dev/null args...`.
func (s tmuxServer) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "tmux", append([]string{"-L", s.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = s.env
	cmd.WaitDelay = waitDelay
	return cmd
}

// run runs one tmux command (or a list separated by ";" arguments) and
// returns its standard output. Errors carry tmux's message and wrap
// errNoSession or errDuplicate when that is what tmux said.
func (s tmuxServer) run(ctx context.Context, args ...string) (string, error) {
	cmd := s.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return string(out), nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("tmux is not installed (not found in PATH): %w", err)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = strings.TrimSpace(string(out))
	}
	if msg == "" {
		msg = err.Error()
	}
	switch {
	case strings.HasPrefix(msg, "duplicate session"):
		return "", fmt.Errorf("tmux: %s: %w", msg, errDuplicate)
	case strings.HasPrefix(msg, "can't find session"), strings.HasPrefix(msg, "no such session"),
		strings.HasPrefix(msg, "can't find window"), strings.HasPrefix(msg, "no such window"),
		strings.HasPrefix(msg, "no current target"),
		strings.HasPrefix(msg, "no server running"), strings.HasPrefix(msg, "error connecting to"):
		return "", fmt.Errorf("tmux: %s: %w", msg, errNoSession)
	case strings.HasPrefix(msg, "server exited unexpectedly"), strings.HasPrefix(msg, "lost server"):
		// The server exited (its last session ended) as this command
		// reached it.
		return "", fmt.Errorf("tmux: %s: %w", msg, errServerExited)
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("tmux %s: %w", args[0], ctx.Err())
	}
	return "", fmt.Errorf("tmux %s: %s", args[0], msg)
}

// target is the tmux target for the session named name: "=" asks for that
// exact name (not a prefix or pattern), and the trailing ":" makes it valid
// where tmux expects a window or pane (the session's current one).
func target(name string) string { return "=" + name + ":" }

// paneStatus is what tmux knows about a session's only pane.
type paneStatus struct {
	dead     bool
	code     int // exit code of a dead pane, if it exited
	signal   int // signal number that killed a dead pane, if any
	attached int // number of clients attached to the session
	server   int // the tmux server's process id
}

// paneStatus asks tmux about the session's pane.
func (s tmuxServer) paneStatus(ctx context.Context, name string) (paneStatus, error) {
	// display-message falls back to another session when the target is
	// gone, so the answer names its session.
	out, err := s.run(ctx, "display-message", "-p", "-t", target(name),
		"#{session_name}|#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{session_attached}|#{pid}")
	if err != nil {
		return paneStatus{}, err
	}
	fields := strings.Split(strings.TrimSpace(out), "|")
	if len(fields) != 6 {
		return paneStatus{}, fmt.Errorf("tmux display-message: unexpected output %q", out)
	}
	if fields[0] != name {
		return paneStatus{}, fmt.Errorf("tmux: session %s is gone: %w", name, errNoSession)
	}
	// A pane is dead once its terminal is closed (#{pane_dead}), but its
	// status is known only once tmux has reaped the process.
	st := paneStatus{dead: fields[1] == "1" && (fields[2] != "" || fields[3] != "")}
	st.code, _ = strconv.Atoi(fields[2])
	st.signal = signalNumber(fields[3])
	st.attached, _ = strconv.Atoi(fields[4])
	st.server, _ = strconv.Atoi(fields[5])
	return st, nil
}

// signalNumber parses #{pane_dead_signal}: a number in tmux 3.3, a name
// ("TERM", "kill") in some later versions. 0 means none or unknown.
func signalNumber(s string) int {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return int(unix.SignalNum(name))
}

// paneTTY returns the path of the terminal of the session's pane.
func (s tmuxServer) paneTTY(ctx context.Context, name string) (string, error) {
	out, err := s.run(ctx, "display-message", "-p", "-t", target(name), "#{session_name}|#{pane_tty}")
	if err != nil {
		return "", err
	}
	session, tty, _ := strings.Cut(strings.TrimSpace(out), "|")
	if session != name {
		return "", fmt.Errorf("tmux: session %s is gone: %w", name, errNoSession)
	}
	return tty, nil
}

// killSession kills the session; one that is gone already is no error.
func (s tmuxServer) killSession(ctx context.Context, name string) error {
	_, err := s.run(ctx, "kill-session", "-t", target(name))
	if errors.Is(err, errNoSession) {
		return nil
	}
	return err
}

// arg protects one argument of a command from tmux's splitting of a
// command list: an argument ending in ";" ends a command unless the ";" is
// escaped as "\;", which tmux turns back into ";".
func arg(s string) string {
	if strings.HasSuffix(s, ";") {
		return s[:len(s)-1] + `\;`
	}
	return s
}

// tmuxVersion parses `tmux -V` output ("tmux 3.3a", "tmux next-3.4") into
// major and minor; ok is false if it cannot.
func tmuxVersion(out string) (major, minor int, ok bool) {
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "tmux "))
	v = strings.TrimPrefix(v, "next-")
	maj, rest, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(maj)
	minor, err2 = strconv.Atoi(rest[:end])
	return major, minor, err1 == nil && err2 == nil
}
