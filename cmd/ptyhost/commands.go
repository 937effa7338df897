package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ptyhost/ptyhost/core"
)

// This file holds the client commands: their flags, help and output. The
// REST calls are in client.go, the attach loop in attach.go.

const attachHelp = `Usage: ptyhost attach [flags] ID

Attach this terminal to session ID, or to the one session whose ID starts
with ID. The session's scrollback is replayed, then its output is written
to stdout byte for byte as it arrives, and what you type is sent to it.
When stdin is a terminal it is put in raw mode while attached (and always
restored), and its size is sent to the session now and whenever it
changes.

Press Ctrl-] to detach: the session keeps running and you can attach again
later. The detach line says whether an idle timeout will destroy it and
how to come back ("[detached from session ID, which keeps running until
it exits or is killed; reattach with 'ptyhost attach ID']"). --detach-key
changes the key; the detach key itself is never sent to the session.
Messages from the server ("ptyhost: server: ...") are printed to stderr
and the session carries on. If stdin ends, the session keeps running and
its output is shown until it exits.

With --read-only you watch: the session's output is shown, but nothing
you type is sent (only the detach key works, and --detach-key none is
refused) and the session keeps the size its other clients give it. A line
says so when you attach. A read-only API token (serve --read-token) can
attach only this way.

Whatever ends attach, the terminal is left as it was before: programs
such as vim and less turn on the alternate screen, hide the cursor, or
turn on the application keypad, mouse reporting or bracketed paste, and
attach turns off what the session's output left on before its last line,
as tmux does. When the session's program is restarted in place ('ptyhost
restart'), attach does the same, prints nothing and stays attached: the
new program starts from a fresh terminal.

When attach ends, one line says what happened: "[detached from session
ID...]", "[session exited with code N]", "[session killed by SIGNAL]",
"[session ended: REASON]", "[session destroyed]", or an error line
("ptyhost: ...") such as "ptyhost: the server is shutting down".

When the connection drops without the server saying the session ended (a
network failure, a server going away, a server restarting: sessions
outlive the server, and the next one takes them up; or nothing came for
75s, not even an answer to the pings attach sends after 25s of quiet; or
the server took nothing typed for 2 minutes), attach prints
"[...; reconnecting…]" and attaches again, with backoff, for up to
--reconnect (default 30s), resuming at the last byte it received: no
output is lost or repeated while the server still keeps it (else the
screen is reset and the scrollback replayed). Pressing the detach key
meanwhile stops trying; what else is typed meanwhile is dropped. A session
that ended meanwhile ends attach with its exit status; one that is gone,
with an error.

Exit status:
  N   the session's process exited with code N while attached
      (128+S when it was killed by signal S), or it had already ended
      with code N ("session ID has ended (exit code N)" is printed)
  0   you detached, or the session was destroyed ('ptyhost kill', idle
      timeout; "[session destroyed]" is printed)
  1   any error: session not found, unauthorized, server unreachable or
      shutting down (also when a server that stops hangs its sessions
      up: "[session ended: the server shut down and hung it up]"),
      connection lost, interrupted (SIGINT, SIGTERM, SIGQUIT, or SIGHUP:
      the terminal hung up); also a session that ended in a way its
      process did not choose ("[session ended: REASON]", status ERROR)
      with code 0
  2   bad usage
  141 stdout is a pipe whose reader went away ('ptyhost attach ID | head');
      nothing is printed, as for a command SIGPIPE killed
`

const runHelp = `Usage: ptyhost run [flags] [--] [CMD [ARG...]]

Create a session running CMD in an environment, then attach this terminal
to it as 'ptyhost attach' does. Without CMD the session runs the
environment's shell. The session starts in --cwd, with this terminal's
size when stdin is a terminal, else 80x24. Without --cwd, a session in a
HOST environment starts in the current directory, and one in any other
environment (a container, a remote host) in that environment's default
directory; there --cwd is sent as written, so '~/src' means the remote
user's home. On Windows, where the server is always on another machine,
every environment is treated as remote.

When the process exits, ptyhost exits with its exit code (128+S when it
was killed by signal S).

Press Ctrl-] (see --detach-key) to detach: the session keeps running and
the detach line gives its ID, so you can 'ptyhost attach ID' again later.
It runs until it exits or is killed, unless it has an idle timeout
(--idle-timeout here, else its environment's, else the server's): then it
is destroyed that long after its last writing client left. The detach
line says which. The terminal is restored, and the last line says what
happened, as 'ptyhost attach --help' describes.

When the connection drops, run reconnects as 'ptyhost attach' does.

If run ends any other way - it is interrupted (SIGINT, SIGTERM, SIGQUIT,
or SIGHUP: the terminal hung up), the reader of its stdout goes away
('ptyhost run ... | head'), the connection to the server is lost and
reconnecting fails, or attaching fails - it destroys the session it
created, so that no session is left running that nobody is watching; with
--keep the session is left running instead and its ID is printed. If the
session is destroyed from elsewhere ('ptyhost kill', idle timeout), run
prints "[session destroyed]" and exits 1.

Examples:
  ptyhost run                          a shell in the host environment
  ptyhost run --env dev -- make test   exits with make's status
`

const killHelp = `Usage: ptyhost kill [flags] ID...

Destroy each session: its process is killed and attached clients are
disconnected. Each ID may be any unique prefix of a session's ID. Killing
a session that has ended already is not an error; an ID that names no
session, or a prefix that starts several sessions' IDs, is (exit status
1, after the other IDs are done). Prints nothing on success.
`

// newFlagSet returns a FlagSet for the command name ("env add") with the
// common client flags registered into cf.
//
// Its output is discarded: parseFlags reports errors once, as the
// usageError it returns, rather than the flag package printing them too.
func newFlagSet(name string, cf *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf.register(fs)
	return fs
}

// parseFlags parses args into fs. Positional arguments are returned; with
// interspersed they may sit among the flags ("kill ID --server URL"),
// otherwise parsing stops at the first one, so that run's command keeps
// its own flags. help is true when --help or -h was given: the help has
// been printed to stdout and the command should return err, the write's
// error (a full stdout fails, exit 1, as any output does).
func parseFlags(fs *flag.FlagSet, helpText string, args []string, interspersed bool, stdio stdio) (pos []string, help bool, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, printHelp(stdio.out, fs, helpText)
			}
			return nil, false, usageError{fmt.Sprintf("%s: %v (see 'ptyhost %s --help')", fs.Name(), err, fs.Name())}
		}
		rest := fs.Args()
		if !interspersed || len(rest) == 0 {
			return append(pos, rest...), false, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), false, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// printHelp prints a command's help text and its flags, spelled --flag.
func printHelp(w io.Writer, fs *flag.FlagSet, helpText string) error {
	var b strings.Builder
	b.WriteString(helpText)
	b.WriteString("\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-" // -a, -q: one letter, as docker spells them
		}
		fmt.Fprintf(&b, "  %s%s", dashes, f.Name)
		if arg != "" {
			fmt.Fprintf(&b, " %s", arg)
		}
		words := strings.Fields(usage)
		switch f.DefValue {
		case "", "false", "0", "[]":
		default:
			words = append(words, fmt.Sprintf("(default %q)", f.DefValue)) // kept on one line
		}
		b.WriteString("\n")
		wrapIndented(&b, words, helpIndent, helpWidth)
	})
	b.WriteString("  -h, --help\n      print this help\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// The help's flag descriptions are indented by helpIndent and wrapped to
// helpWidth columns.
const (
	helpIndent = "      "
	helpWidth  = 80
)

// wrapIndented writes words to b, separated by spaces, in lines of at
// most width columns (a longer word keeps a line of its own), each
// beginning with indent.
func wrapIndented(b *strings.Builder, words []string, indent string, width int) {
	n := 0 // the columns of the current line so far, 0 before its first word
	for _, word := range words {
		w := utf8.RuneCountInString(word)
		switch {
		case n == 0:
			b.WriteString(indent)
			n = len(indent)
		case n+1+w > width:
			b.WriteString("\n")
			b.WriteString(indent)
			n = len(indent)
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += w
	}
	b.WriteString("\n")
}

// detachKeyFlag is --detach-key: "ctrl-X" for X in a-z or ]\^_@, or
// "none".
type detachKeyFlag struct {
	key  int // the byte, or -1 for none
	name string
}

func newDetachKeyFlag(fs *flag.FlagSet) *detachKeyFlag {
	d := &detachKeyFlag{key: defaultDetachKey, name: "ctrl-]"}
	fs.Var(d, "detach-key", "`KEY` that detaches: ctrl-X for X in a-z or ]\\^_@, or none")
	return d
}

func (d *detachKeyFlag) String() string {
	if d == nil {
		return ""
	}
	return d.name
}

func (d *detachKeyFlag) Set(s string) error {
	k, err := parseDetachKey(s)
	if err != nil {
		return err
	}
	d.key, d.name = k, s
	return nil
}

// parseDetachKey returns the byte that key names, or -1 for "none".
func parseDetachKey(key string) (int, error) {
	s := strings.ToLower(key)
	if s == "none" {
		return -1, nil
	}
	if x, ok := strings.CutPrefix(s, "ctrl-"); ok && len(x) == 1 {
		switch c := x[0]; {
		case c >= 'a' && c <= 'z':
			return int(c-'a') + 1, nil
		case c == '@':
			return 0x00, nil
		case c == '\\':
			return 0x1c, nil
		case c == ']':
			return 0x1d, nil
		case c == '^':
			return 0x1e, nil
		case c == '_':
			return 0x1f, nil
		}
	}
	return 0, fmt.Errorf(`want ctrl-X for X in a-z or ]\^_@, or none; got %q`, key)
}

func runAttach(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("attach", &cf)
	detach := newDetachKeyFlag(fs)
	reconnect := newReconnectFlag(fs)
	readOnly := falseFlag(fs, "read-only", "watch: show the output, send nothing typed but the detach key, and no terminal size")
	pos, help, err := parseFlags(fs, attachHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"attach: want exactly one session ID (see 'ptyhost attach --help')"}
	}
	if err := checkIDArg("attach", "session", pos[0]); err != nil {
		return err
	}
	if *readOnly && detach.key < 0 {
		// In raw mode Ctrl-C is a key like any other, and a viewer's
		// keys go nowhere: nothing would end the attachment.
		return usageError{"attach: --read-only needs a detach key to leave by; --detach-key none is not allowed with it"}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveSessionID(ctx, c, pos[0])
	if err != nil {
		return err
	}
	res, err := attach(ctx, c, stdio, attachOptions{id: id, detachKey: detach.key, reconnect: *reconnect, readOnly: *readOnly})
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden && !*readOnly {
		// The server names its mode=read; say the flag that asks for it.
		return fmt.Errorf("%w; a read-only token watches with 'ptyhost attach --read-only %s'", err, cell(id))
	}
	if err != nil {
		return err
	}
	if res.end == endExited && res.code != 0 {
		return exitError{res.code}
	}
	return nil
}

func runRun(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("run", &cf)
	envID := fs.String("env", "host", "`ID` of the environment to run in")
	cwd := fs.String("cwd", "", "working `DIR` of the session (default: for a HOST environment the current directory (not on Windows), else the environment's own)")
	id := fs.String("id", "", "session `ID` (default: generated by the server)")
	envVars := envVarsFlag{}
	fs.Var(envVars, "env-var", "set an environment variable of the session, `K=V`; repeatable")
	keep := falseFlag(fs, "keep", "when run ends other than by the process exiting or a detach, leave the session running instead of destroying it")
	idle := fs.String("idle-timeout", "", "destroy the session this long after its last writing client left (`DURATION` such as 90s or 1h, 0 at once, or never; default: the environment's, else the server's)")
	input := fs.String("input", "", "`TEXT` to type into the program once it is ready to read (its first output, then 100ms of quiet; or 3s without output), as given: to press Enter end it with a newline, as bash's --input $'text\\n'")
	unsetEnv := unsetEnvFlag{}
	fs.Var(&unsetEnv, "unset-env", "remove the environment variable `NAME` from the session's environment (inherited or the environment's); repeatable, or comma-separated")
	detach := newDetachKeyFlag(fs)
	reconnect := newReconnectFlag(fs)
	command, help, err := parseFlags(fs, runHelp, args, false, stdio)
	if help || err != nil {
		return err
	}
	if *idle != "" {
		if _, err := core.ParseIdleTimeout(*idle); err != nil {
			return usageError{fmt.Sprintf("run: --idle-timeout %q: want a duration such as 90s or 1h, 0, or never", *idle)}
		}
	}
	if *envID == "" {
		return usageError{"run: --env must not be empty"}
	}
	if err := checkIDArg("", "environment", *envID); err != nil {
		return usageError{"run: --env: " + err.Error()}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	env, err := c.getEnvironment(ctx, *envID)
	if err != nil {
		return err
	}
	dir, err := runDir(env.Type, *cwd)
	if err != nil {
		return err
	}

	req := createSessionRequest{
		ID:            *id,
		EnvironmentID: *envID,
		WorktreePath:  dir,
		Command:       command,
		IdleTimeout:   *idle,
	}
	if len(envVars) > 0 {
		req.Env = envVars
	}
	if tty := openTerminal(stdio.in, stdio.out); tty != nil {
		req.Cols, req.Rows, _ = tty.size()
	}
	s, err := c.createRunSession(ctx, runSessionRequest{createSessionRequest: req, Input: *input, UnsetEnv: unsetEnv})
	if err != nil {
		return err
	}

	res, err := attach(ctx, c, stdio, attachOptions{id: s.ID, detachKey: detach.key, reconnect: *reconnect})
	if err != nil {
		if *keep {
			// A goesOnError's line says how to come back already.
			var goesOn *goesOnError
			if !errors.As(err, &goesOn) {
				fmt.Fprintf(stdio.err, "ptyhost: session %s left running (--keep); reattach with 'ptyhost attach %s'\n", cell(s.ID), cell(s.ID))
			}
			return err
		}
		// The session was created for this terminal; do not leave it
		// running unseen.
		return destroyRunSession(ctx, c, stdio, s.ID, err)
	}
	switch res.end {
	case endDetached:
		// The detach line said how to come back.
		return nil
	case endDestroyed:
		return exitError{1}
	}
	if res.code != 0 {
		return exitError{res.code}
	}
	return nil
}

func runKill(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("kill", &cf)
	ids, help, err := parseFlags(fs, killHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageError{"kill: want at least one session ID (see 'ptyhost kill --help')"}
	}
	if err := checkIDArgs("kill", "session", ids); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	return forEach(ids, stdio, func(arg string) error {
		id, err := resolveSessionID(ctx, c, arg)
		if err != nil {
			return fmt.Errorf("kill: %w", err)
		}
		if err := c.deleteSession(ctx, id); err != nil {
			return fmt.Errorf("kill %s: %w", id, err)
		}
		return nil
	})
}

// forEach calls f for every id. All but the last error are printed to
// stderr as they would be by exitCode; the last is returned.
func forEach(ids []string, stdio stdio, f func(id string) error) error {
	var last error
	for _, id := range ids {
		if err := f(id); err != nil {
			if last != nil {
				fmt.Fprintln(stdio.err, "ptyhost:", printableMessage(last.Error()))
			}
			last = err
		}
	}
	return last
}

// jsonObject returns b, trimmed, if it is a JSON object.
func jsonObject(b []byte) (json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New(`must be a JSON object, such as {"shell": "/bin/zsh"}`)
	}
	return json.RawMessage(b), nil
}

// printJSONArray prints a JSON array from the server, indented; a
// missing array prints as [].
func printJSONArray(w io.Writer, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("[]")
	}
	return printJSON(w, raw)
}

// unmarshalArray decodes a JSON array from the server; null or missing is
// empty.
func unmarshalArray(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// formatTime is how tables show a time: local, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
