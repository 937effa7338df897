package main

import (
	"errors"
	"io"
	"os/exec"
	"regexp"
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

// TestE2EAttachExitCodes drives the ptyhost binary in a PTY against the
// real server and checks every exit status 'ptyhost attach --help'
// documents, with the line that says what happened.
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
			wantCode: 7,
		},
		{
			name: "killed by a signal", command: "echo ready; read x; kill -TERM $$",
			act:      func(t *testing.T, _ *exec.Cmd, ptmx io.Writer, _ string) { ptmx.Write([]byte("\r")) },
			wantCode: 128 + int(syscall.SIGTERM),
		},
		{
			name: "detached", command: "echo ready; read x",
			act:      func(t *testing.T, _ *exec.Cmd, ptmx io.Writer, _ string) { ptmx.Write([]byte{0x1d}) },
			wantCode: 0, wantLine: `\[detached from session [^\]]+\]\r\n$`,
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
			if tt.wantLine != "" {
				out.wait(t, regexp.MustCompile(tt.wantLine))
			}
		})
	}

	// A session that has ended: attach exits with its code.
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "exit 3"}})
	waitStatus(t, srv, id, "TERMINATED")
	cmd, _, out := startCLI(t, "attach", "--server", srv.URL, id)
	if code := exitStatusOf(waitExit(cmd)); code != 3 {
		t.Errorf("attach to an ended session: exit %d, want 3; screen tail %q", code, tail([]byte(out.buf.String())))
	}
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
		out.wait(t, regexp.MustCompile(`\[session ended: the server shut down and hung it up\]\r\n$`))
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
		out.wait(t, regexp.MustCompile(`the session goes on`))
		// The next server takes it up, and the session was not hung up.
		srv = srv.Restart(t)
		waitLive(t, srv, id)
	})
}
