package main

import (
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// exitStatusOf returns the exit status of a finished command, or -1.
func exitStatusOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// linesAfterReady returns the non-empty lines of a PTY's screen after the
// session's last "ready" line (all of them when there is none): what
// attach printed itself once the session was ready, and the echo of what
// was typed.
func linesAfterReady(screen string) []string {
	if i := strings.LastIndex(screen, "ready\r\n"); i >= 0 {
		screen = screen[i+len("ready\r\n"):]
	}
	var lines []string
	for l := range strings.SplitSeq(screen, "\r\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkOneLine fails the test unless attach printed exactly one line,
// matching want, after the session's "ready".
func checkOneLine(t *testing.T, out *ptyReader, want string) {
	t.Helper()
	out.wait(t, regexp.MustCompile(want))
	if lines := linesAfterReady(out.buf.String()); len(lines) != 1 || !regexp.MustCompile(want).MatchString(lines[0]+"\r\n") {
		t.Errorf("printed %q, want one line matching %s", lines, want)
	}
}

// TestE2EAttachExitCodes drives the ptyhost binary in a PTY against the
// real server and checks every exit status 'ptyhost attach --help'
// documents, with the one line that says what happened.
func TestE2EAttachExitCodes(t *testing.T) {
	srv := startServer(t)
	tests := []struct {
		name    string
		command string // the session's; "" for none
		args    []string
		// act does what ends the attachment, once the session's "ready"
		// is on the screen.
		act      func(t *testing.T, cmd *exec.Cmd, ptmx io.Writer, id string)
		wantCode int
		wantLine string // a regexp for the last thing on the screen
	}{
		{
			name: "exit code", command: "echo ready; read x; exit 7",
			act:      func(t *testing.T, _ *exec.Cmd, ptmx io.Writer, _ string) { ptmx.Write([]byte("\r")) },
			wantCode: 7, wantLine: `\[session exited with code 7\]\r\n$`,
		},
		{
			name: "killed by a signal", command: "echo ready; read x; kill -TERM $$",
			act:      func(t *testing.T, _ *exec.Cmd, ptmx io.Writer, _ string) { ptmx.Write([]byte("\r")) },
			wantCode: 128 + int(syscall.SIGTERM), wantLine: `\[session killed by SIGTERM\]\r\n$`,
		},
		{
			name: "detached", command: "echo ready; read x",
			act:      func(t *testing.T, _ *exec.Cmd, ptmx io.Writer, _ string) { ptmx.Write([]byte{0x1d}) },
			wantCode: 0, wantLine: `\[detached from session (\S+), which keeps running until it exits or is killed; reattach with 'ptyhost attach (\S+)'\]\r\n$`,
		},
		{
			name: "destroyed", command: "echo ready; read x",
			act: func(t *testing.T, _ *exec.Cmd, _ io.Writer, id string) {
				if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != 204 {
					t.Fatalf("destroy: HTTP %d", code)
				}
			},
			wantCode: 0, wantLine: `\[session destroyed\]\r\n$`,
		},
		{
			name: "interrupted", command: "echo ready; read x",
			act: func(t *testing.T, cmd *exec.Cmd, _ io.Writer, _ string) {
				cmd.Process.Signal(syscall.SIGINT)
			},
			wantCode: 1, wantLine: `ptyhost: interrupt signal received\r\n$`,
		},
		{name: "bad usage", args: []string{"attach", "--server", srv.URL}, wantCode: 2, wantLine: `ptyhost: attach: want exactly one session ID`},
		{name: "not found", args: []string{"attach", "--server", srv.URL, "nosuchsession"}, wantCode: 1, wantLine: `nosuchsession`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, id := tt.args, ""
			if tt.command != "" {
				id = srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", tt.command}})
				args = []string{"attach", "--server", srv.URL, id}
			}
			cmd, ptmx, out := startCLI(t, args...)
			if tt.act != nil {
				out.wait(t, regexp.MustCompile(`ready\r\n`))
				tt.act(t, cmd, ptmx, id)
			}
			err := waitExit(cmd)
			if code := exitStatusOf(err); code != tt.wantCode {
				t.Errorf("exit %v, want status %d; screen tail %q", err, tt.wantCode, tail([]byte(out.buf.String())))
			}
			checkOneLine(t, out, tt.wantLine)
		})
	}

	// A session that has ended: attach exits with its code.
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "exit 3"}})
	waitStatus(t, srv, id, "TERMINATED")
	cmd, _, out := startCLI(t, "attach", "--server", srv.URL, id)
	if code := exitStatusOf(waitExit(cmd)); code != 3 {
		t.Errorf("attach to an ended session: exit %d, want 3; screen tail %q", code, tail([]byte(out.buf.String())))
	}
	// The server replays an ended session's output and its exit, or
	// refuses with 410 once it keeps no more of it.
	checkOneLine(t, out, `(\[session exited with code 3\]|ptyhost: session \S+ has ended \(exit code 3\))\r\n$`)
}

// TestE2EAttachServerShutdown: a server that stops and hangs its
// sessions up (--hang-up-on-stop) ends attach with status 1 and says so,
// not with the hung-up shell's 129; one that stops leaving them running
// (the default) ends an attach that does not reconnect with status 1 and
// says the session goes on.
func TestE2EAttachServerShutdown(t *testing.T) {
	t.Run("hang up", func(t *testing.T) {
		srv := startServer(t) // e2etest passes --hang-up-on-stop
		id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo ready; read x"}})
		cmd, _, out := startCLI(t, "attach", "--server", srv.URL, id)
		out.wait(t, regexp.MustCompile(`ready\r\n`))
		if err := srv.Stop(t, 30*time.Second); err != nil {
			t.Errorf("server: %v", err)
		}
		if code := exitStatusOf(waitExit(cmd)); code != 1 {
			t.Errorf("exit %d, want 1; screen tail %q", code, tail([]byte(out.buf.String())))
		}
		checkOneLine(t, out, `\[session ended: the server shut down and hung it up\]\r\n$`)
	})
	t.Run("leave running", func(t *testing.T) {
		srv := startKeeping(t, e2etest.Options{Run: runServer})
		id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo ready; read x"}})
		cmd, _, out := startCLI(t, "attach", "--reconnect", "0", "--server", srv.URL, id)
		out.wait(t, regexp.MustCompile(`ready\r\n`))
		if err := srv.Stop(t, 30*time.Second); err != nil {
			t.Errorf("server: %v", err)
		}
		if code := exitStatusOf(waitExit(cmd)); code != 1 {
			t.Errorf("exit %d, want 1; screen tail %q", code, tail([]byte(out.buf.String())))
		}
		checkOneLine(t, out, `ptyhost: the server is restarting; the session goes on; reattach with 'ptyhost attach `+regexp.QuoteMeta(id)+`'\r\n$`)
		// The next server takes it up, and the session was not hung up.
		srv = srv.Restart(t)
		waitLive(t, srv, id)
	})
}
