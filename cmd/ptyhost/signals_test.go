package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// startRunOnTTY runs `ptyhost run --id ID ... -- /bin/sh -c script`
// against the server at url with stdin and stderr on a new PTY, as its
// controlling terminal, and stdout there too unless stdout is given. It
// returns the command, the PTY's terminal side (to read its settings) and
// what the PTY shows.
func startRunOnTTY(t *testing.T, url, id, script string, stdout *os.File) (*exec.Cmd, *os.File, *ptyReader) {
	t.Helper()
	ptmx, tty := openPTY(t)
	cmd := exec.Command(testbin.Ptyhost(t), "run", "--server", url, "--id", id, "--", "/bin/sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &ptyReader{f: ptmx}
	go out.run()
	return cmd, tty, out
}

// TestE2ERunEndsOnHangup: SIGHUP (the terminal hung up: the user is gone,
// once or twice, as the kernel and then the shell send it) and SIGQUIT end
// `ptyhost run` as SIGTERM does: the terminal is restored, the session it
// created is destroyed, it exits 1 saying why, and SIGQUIT dumps no
// goroutines.
func TestE2ERunEndsOnHangup(t *testing.T) {
	srv := startServer(t)
	for _, tt := range []struct {
		name string
		sigs []syscall.Signal
		line string
	}{
		{"hangup", []syscall.Signal{syscall.SIGHUP}, "ptyhost: hangup signal received"},
		{"hangup twice", []syscall.Signal{syscall.SIGHUP, syscall.SIGHUP}, "ptyhost: hangup signal received"},
		{"quit", []syscall.Signal{syscall.SIGQUIT}, "ptyhost: quit signal received"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "sig-" + strings.ReplaceAll(tt.name, " ", "-")
			cmd, tty, out := startRunOnTTY(t, srv.URL, id, "echo ready; read x", nil)
			out.wait(t, regexp.MustCompile(`ready\r\n`))
			if !isRaw(termios(t, tty)) {
				t.Fatal("run did not put the terminal in raw mode")
			}
			for _, sig := range tt.sigs {
				cmd.Process.Signal(sig)
			}
			if code := exitStatusOf(waitExit(cmd)); code != 1 {
				t.Errorf("exit status %d, want 1; screen tail %q", code, tail([]byte(out.buf.String())))
			}
			out.wait(t, regexp.MustCompile(regexp.QuoteMeta(tt.line)))
			if s := out.buf.String(); strings.Contains(s, "goroutine ") {
				t.Errorf("a goroutine dump: %q", tail([]byte(s)))
			}
			if isRaw(termios(t, tty)) {
				t.Error("the terminal was left in raw mode")
			}
			waitStatus(t, srv, id, "TERMINATED")
		})
	}
}

// TestE2ERunStdoutClosed: when the reader of run's stdout goes away
// (`ptyhost run ... | head`), the next write fails instead of SIGPIPE
// killing run: it restores the terminal, destroys its session and exits,
// silently, with the status of a program SIGPIPE killed (141).
func TestE2ERunStdoutClosed(t *testing.T) {
	srv := startServer(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd, tty, out := startRunOnTTY(t, srv.URL, "piped", "echo ready; while :; do echo y; sleep 0.01; done", pw)
	pw.Close()
	lines := bufio.NewReader(pr)
	deadline := time.Now().Add(waitTimeout)
	for {
		l, err := lines.ReadString('\n')
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("reading run's stdout: %v; screen %q", err, out.buf.String())
		}
		if strings.HasPrefix(l, "ready") {
			break
		}
	}
	pr.Close() // as head does once it has enough
	if code := exitStatusOf(waitExit(cmd)); code != 128+int(syscall.SIGPIPE) {
		t.Errorf("exit status %d, want %d; screen %q", code, 128+int(syscall.SIGPIPE), out.buf.String())
	}
	if isRaw(termios(t, tty)) {
		t.Error("the terminal was left in raw mode")
	}
	waitStatus(t, srv, "piped", "TERMINATED")
	time.Sleep(100 * time.Millisecond) // what is left to read of the PTY
	if s := out.buf.String(); strings.Contains(s, "ptyhost:") {
		t.Errorf("run printed %q; want nothing", s)
	}
}
