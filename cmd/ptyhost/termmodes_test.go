package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

func TestTermModesRestore(t *testing.T) {
	tests := []struct {
		name string
		out  []string // the session's output, in writes
		want string   // what restore writes
	}{
		{"plain text", []string{"hello\r\n"}, ""},
		{"colours reset by the program", []string{"\x1b[1;31mred\x1b[0m\r\n"}, ""},
		{"colours left on", []string{"\x1b[1;31mred"}, "\x1b[m"},
		{"alternate screen", []string{"\x1b[?1049h\x1b[2J"}, "\x1b[?1049l"},
		{"alternate screen left", []string{"\x1b[?1049h", "vim", "\x1b[?1049l"}, ""},
		{"vim-like", []string{"\x1b[?1049h\x1b[?1h\x1b=\x1b[?2004h\x1b[?25l\x1b[2 q"},
			"\x1b>\x1b[0 q\x1b[?2004l\x1b[?1l\x1b[?25h\x1b[?1049l"},
		{"several modes in one sequence", []string{"\x1b[?1000;1006;1004h"}, "\x1b[?1000l\x1b[?1006l\x1b[?1004l"},
		{"split across writes", []string{"\x1b[?10", "49h\x1b", "[?25", "l"}, "\x1b[?25h\x1b[?1049l"},
		{"keypad off again", []string{"\x1b=", "\x1b>"}, ""},
		{"full reset", []string{"\x1b[?1049h\x1b[?25l\x1b=\x1bc"}, ""},
		{"cursor shown again", []string{"\x1b[?25l", "\x1b[?25h"}, ""},
		{"kitty keyboard", []string{"\x1b[>1u\x1b[>3u"}, "\x1b[<2u"},
		{"kitty keyboard popped", []string{"\x1b[>1u\x1b[<u"}, ""},
		{"mode text inside a title is not a mode", []string{"\x1b]0;[?1049h\x07"}, ""},
		{"ESC ends a title", []string{"\x1b]0;t\x1b[?1049h"}, "\x1b[?1049l"},
		{"title ended by ST", []string{"\x1b]0;t\x1b\\\x1b[?2004h"}, "\x1b[?2004l"},
		{"unknown modes ignored", []string{"\x1b[?7l\x1b[?12h"}, ""},
		{"cancelled sequence", []string{"\x1b[?1049\x18h"}, ""},
		{"unfinished sequence cut short", []string{"\x1b[?2004h\x1b[3"}, "\x18\x1b[?2004l"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			m := &termModes{w: &b}
			for _, p := range tt.out {
				if n, err := m.Write([]byte(p)); n != len(p) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := b.String(); got != strings.Join(tt.out, "") {
				t.Fatalf("passed on %q", got)
			}
			b.Reset()
			m.restore()
			if got := b.String(); got != tt.want {
				t.Errorf("restore wrote %q, want %q", got, tt.want)
			}
			b.Reset()
			m.restore()
			if b.Len() != 0 {
				t.Errorf("a second restore wrote %q", b.String())
			}
		})
	}
	var nilModes *termModes
	nilModes.restore() // does nothing
}

// TestAttachRestoresModes: whatever ends an attachment, the modes the
// session turned on are turned off before the line that says why, and a
// session that turned none on gets no extra bytes.
func TestAttachRestoresModes(t *testing.T) {
	const modes = "\x1b[?1049h\x1b[?25l"
	const resets = "\x1b[?25h\x1b[?1049l"
	tests := []struct {
		name     string
		replay   []string
		input    string
		wantOut  string // stdout after the echo of input
		wantCode int
		wantErr  string
	}{
		{"detach", []string{modes}, "\x1d", resets, 0, "\r\n[detached from session s1; reattach with 'ptyhost attach s1']\r\n"},
		{"exit", []string{modes}, "exit 3\n", "exit 3\n" + resets, 3, "\r\n[session exited with code 3]\r\n"},
		{"destroyed", []string{modes}, "destroy\n", "destroy\n" + resets, 0, "\r\n[session destroyed]\r\n"},
		{"shutdown", []string{modes}, "shutdown\n", "shutdown\n" + resets, 1, "ptyhost: the server is shutting down; reattach with 'ptyhost attach s1'\n"},
		{"plain session", []string{"plain\r\n"}, "exit 0\n", "exit 0\n", 0, "\r\n[session exited with code 0]\r\n"},
		// A restart in place: the modes go, nothing is printed, and the
		// new program's output follows; it set no modes, so the exit
		// adds none.
		{"restarted", []string{modes}, "restarted\n", "restarted\n" + resets + "new program\r\nexit 0\n", 0, "\r\n[session exited with code 0]\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.replay = tt.replay
			c, err := newClient(f.srv.URL, "")
			if err != nil {
				t.Fatal(err)
			}
			pr, stdin := newStdin(t)
			// Both streams in one buffer, as on a terminal.
			var screen syncBuffer
			type result struct {
				res attachResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := attach(t.Context(), c, stdio{in: pr, out: &screen, err: &screen}, attachOptions{id: "s1", detachKey: defaultDetachKey, restoreModes: true})
				done <- result{res, err}
			}()
			screen.waitFor(t, strings.Join(tt.replay, ""))
			typeIn(t, stdin, tt.input)
			if tt.name == "restarted" {
				screen.waitFor(t, "new program\r\n")
				typeIn(t, stdin, "exit 0\n")
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(waitTimeout):
				t.Fatal("attach did not end")
			}
			code := exitCode(r.err, &screen)
			if r.err == nil && r.res.end == endExited {
				code = r.res.code
			}
			want := strings.Join(tt.replay, "") + tt.wantOut + tt.wantErr
			if got := screen.String(); got != want || code != tt.wantCode {
				t.Errorf("screen %q, exit %d; want %q, %d", got, code, want, tt.wantCode)
			}
		})
	}
}

// TestCloseResultAfterExit: an exit followed by a close says how the
// session ended; a server that hangs its sessions up as it stops sends
// their exit (SIGHUP's) and closes 1001, and attach exits 1, not 129.
func TestCloseResultAfterExit(t *testing.T) {
	closed := func(code websocket.StatusCode, reason string) error {
		return fmt.Errorf("reading: %w", websocket.CloseError{Code: code, Reason: reason})
	}
	tests := []struct {
		name     string
		err      error
		exit     wsproto.Exit
		wantCode int
		wantLine string
	}{
		{"exited", closed(websocket.StatusNormalClosure, wsproto.CloseReasonExited), wsproto.Exit{Code: 4}, 4, "session exited with code 4"},
		{"killed", closed(websocket.StatusNormalClosure, wsproto.CloseReasonExited), wsproto.Exit{Code: -1, Signal: "SIGKILL"}, 137, "session killed by SIGKILL"},
		{"crashed", closed(websocket.StatusNormalClosure, wsproto.CloseReasonExited), wsproto.Exit{Code: -1, Reason: "plugin_crashed"}, 1, "session ended: plugin_crashed"},
		{"connection lost after the exit", errors.New("EOF"), wsproto.Exit{Code: 2}, 2, "session exited with code 2"},
		{"hung up on shutdown", closed(websocket.StatusGoingAway, wsproto.CloseReasonShutdown), wsproto.Exit{Code: -1, Signal: "SIGHUP"}, 1, "session ended: the server shut down and hung it up"},
		{"hung up, exited 0", closed(websocket.StatusGoingAway, wsproto.CloseReasonShutdown), wsproto.Exit{Code: 0}, 1, "session ended: the server shut down and hung it up"},
		{"crashed on shutdown", closed(websocket.StatusGoingAway, wsproto.CloseReasonShutdown), wsproto.Exit{Code: -1, Reason: "plugin_crashed"}, 1, "session ended: the server shut down and hung it up (plugin_crashed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := closeResult(tt.err, &tt.exit)
			if r.err != nil || r.retry || r.end != endExited || r.code != tt.wantCode || r.line != tt.wantLine {
				t.Errorf("closeResult = %+v; want exit %d, line %q", r, tt.wantCode, tt.wantLine)
			}
		})
	}
}

// TestE2EAttachTerminalRestored drives the real binary in a PTY against
// the real server: a program enters the alternate screen, hides the
// cursor and turns on bracketed paste, mouse reporting and the
// application keypad; after a detach, and after the session exits, the
// terminal gets them all back before the last line.
func TestE2EAttachTerminalRestored(t *testing.T) {
	srv := startServer(t)
	const on = `printf '\033[?1049h\033[?25l\033[?2004h\033[?1000h\033[?1h\033=ready\n'`
	const resets = "\x1b>\x1b[?1000l\x1b[?2004l\x1b[?1l\x1b[?25h\x1b[?1049l"
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", on + "; read x; exit 5"}})

	cmd, ptmx, out := startCLI(t, "attach", "--server", srv.URL, id)
	out.wait(t, regexp.MustCompile(`ready`))
	ptmx.Write([]byte{0x1d})
	out.wait(t, regexp.MustCompile(regexp.QuoteMeta(resets+"\r\n[detached from session "+id)))
	if err := waitExit(cmd); err != nil {
		t.Errorf("detach: %v", err)
	}

	// Attached again, the replay turns the modes back on; the exit
	// turns them off.
	cmd, ptmx, out = startCLI(t, "attach", "--server", srv.URL, id)
	out.wait(t, regexp.MustCompile(`ready`))
	ptmx.Write([]byte("\r"))
	err := waitExit(cmd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("exit = %v, want status 5", err)
	}
	out.wait(t, regexp.MustCompile(regexp.QuoteMeta(resets+"\r\n[session exited with code 5]\r\n")+`$`))
}
