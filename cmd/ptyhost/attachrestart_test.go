package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestE2EAttachSeesRestart drives 'ptyhost attach' in a PTY against the
// real server while the session is restarted in place (POST
// .../restart): the modes the old program turned on are turned off when
// the restarted message arrives, nothing else is printed, the new
// program's output follows on the same attachment, and its exit ends
// attach with its status and one line.
func TestE2EAttachSeesRestart(t *testing.T) {
	srv := startServer(t)
	const on = `printf '\033[?1049h\033[?25l\033[?2004hready\n'`
	const resets = "\x1b[?2004l\x1b[?25h\x1b[?1049l"
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", on + "; read x; exit 5"}})

	cmd, ptmx, out := startCLI(t, "attach", "--server", srv.URL, id)
	out.wait(t, regexp.MustCompile(`ready\r\n`))
	if code, rec := srv.Request(t, "POST", "/api/v1/sessions/"+id+"/restart", map[string]any{
		"command": []string{"/bin/sh", "-c", "echo again; read x; exit 4"},
	}); code != 200 {
		t.Fatalf("restart: HTTP %d %v", code, rec)
	}
	out.wait(t, regexp.MustCompile(`ready\r\n`+regexp.QuoteMeta(resets)+`again\r\n`))
	ptmx.Write([]byte("\r"))
	if code := exitStatusOf(waitExit(cmd)); code != 4 {
		t.Errorf("exit %d, want 4 (the new program's); screen tail %q", code, tail([]byte(out.buf.String())))
	}
	out.wait(t, regexp.MustCompile(`again\r\n\r\n\r\n\[session exited with code 4\]\r\n$`))
	if n := strings.Count(out.buf.String(), "["+"session"); n != 1 {
		t.Errorf("%d session lines, want 1; screen tail %q", n, tail([]byte(out.buf.String())))
	}
}
