package main

import (
	"errors"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// cli runs the real ptyhost binary with args and PTYHOST_SERVER set to
// server, and returns its exit status and output.
func cli(t *testing.T, server string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testbin.Ptyhost(t), args...)
	cmd.Env = append(cmd.Environ(), "PTYHOST_SERVER="+server, "PTYHOST_TOKEN=")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("ptyhost %q: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// lsLines is the output of `ptyhost ls -q` as a list of IDs.
func lsLines(out string) []string {
	return strings.Fields(out)
}

// TestE2ELsKillPrune drives the real binary against the real server: ls
// shows what runs, kill takes a prefix and refuses an unknown or
// ambiguous one, prune deletes what ended, and the server's address may
// omit http://.
func TestE2ELsKillPrune(t *testing.T) {
	srv := startServer(t)
	server := strings.TrimPrefix(srv.URL, "http://") // as PTYHOST_SERVER=127.0.0.1:PORT
	for _, id := range []string{"web-1", "web-2", "db-1"} {
		srv.CreateSession(t, map[string]any{"id": id, "command": []string{"/bin/sh"}})
	}

	code, out, stderr := cli(t, server, "ls")
	if code != 0 || stderr != "" {
		t.Fatalf("ls: exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Fields(lines[0])
	if want := []string{"ID", "COMMAND", "ENVIRONMENT", "STATUS", "CLIENTS", "SIZE", "AGE", "IDLE", "DETACHED", "EXIT", "REASON"}; !slices.Equal(header, want) {
		t.Errorf("ls header %q, want %q", header, want)
	}
	if len(lines) != 4 {
		t.Errorf("ls printed %d sessions, want 3:\n%s", len(lines)-1, out)
	}

	// A unique prefix names one session; an ambiguous or unknown one is an
	// error that kills nothing.
	if code, _, stderr := cli(t, server, "kill", "web"); code != 1 || !strings.Contains(stderr, "session ID prefix web is ambiguous: 2 sessions' IDs start with it (web-1, web-2)") {
		t.Errorf("kill web: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, server, "kill", "nope"); code != 1 || stderr != "ptyhost: kill: session nope not found (HTTP 404)\n" {
		t.Errorf("kill nope: exit %d, stderr %q", code, stderr)
	}
	if code, out, stderr := cli(t, server, "kill", "db"); code != 0 || out != "" || stderr != "" {
		t.Errorf("kill db: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	waitStatus(t, srv, "db-1", "TERMINATED")
	if code, out, stderr := cli(t, server, "kill", "web-2"); code != 0 || out != "" || stderr != "" {
		t.Errorf("kill web-2: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	waitStatus(t, srv, "web-2", "TERMINATED")
	// Killing an ended session again is not an error.
	if code, _, stderr := cli(t, server, "kill", "db-1"); code != 0 {
		t.Errorf("kill db-1 again: exit %d, stderr %q", code, stderr)
	}

	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"ls", "-q"}, []string{"web-1"}},
		{[]string{"ls", "-q", "-a"}, []string{"web-1", "web-2", "db-1"}},
		{[]string{"ls", "-q", "--filter", "status=terminated"}, []string{"web-2", "db-1"}},
		{[]string{"ls", "-q", "--filter", "status=ended", "--filter", "env=host"}, []string{"web-2", "db-1"}},
		{[]string{"ls", "-q", "-a", "--filter", "env=other"}, nil},
	} {
		code, out, stderr := cli(t, server, tt.args...)
		if got := lsLines(out); code != 0 || !slices.Equal(got, tt.want) {
			t.Errorf("%q: exit %d, stderr %q, listed %q, want %q", tt.args, code, stderr, got, tt.want)
		}
	}
	if code, _, stderr := cli(t, server, "ls", "--filter", "status=gone"); code != 2 || !strings.Contains(stderr, `status "gone": want`) {
		t.Errorf("ls --filter status=gone: exit %d, stderr %q", code, stderr)
	}

	// prune deletes the ended sessions' records, no running one.
	code, out, stderr = runPruneCmd(t, "--server", server)
	if code != 0 || out != "deleted 2 ended session records\n" {
		t.Errorf("prune: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, out, _ := cli(t, server, "ls", "-q", "-a"); code != 0 || !slices.Equal(lsLines(out), []string{"web-1"}) {
		t.Errorf("ls -a after prune: exit %d, %q", code, out)
	}
	if code, out, _ := runPruneCmd(t, "--server", srv.URL); code != 0 || out != "deleted 0 ended session records\n" {
		t.Errorf("prune again: exit %d, stdout %q", code, out)
	}
	if code, _, stderr := cli(t, server, "kill", "db-1"); code != 1 || stderr != "ptyhost: kill: session db-1 not found (HTTP 404)\n" {
		t.Errorf("kill of a pruned session: exit %d, stderr %q", code, stderr)
	}
}

// TestE2EEnvCommands: env show, update and health against the real server
// and HOST plugin; --type in any case.
func TestE2EEnvCommands(t *testing.T) {
	srv := startServer(t)
	server := srv.URL
	if code, out, stderr := cli(t, server, "env", "add", "--type", "host", "--id", "mine", "--name", "Mine"); code != 0 || out != "mine\n" {
		t.Fatalf("env add --type host: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, out, stderr := cli(t, server, "env", "update", "mine", "--name", "Renamed", "--idle-timeout", "1h"); code != 0 || out != "mine\n" {
		t.Errorf("env update: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, stderr := cli(t, server, "env", "show", "mine")
	for _, want := range []string{"ID:           mine\n", "Name:         Renamed\n", "Type:         HOST\n", "Idle timeout: 1h0m0s\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("env show: exit %d, stderr %q, stdout lacks %q:\n%s", code, stderr, want, out)
		}
	}
	code, out, stderr = cli(t, server, "env", "health")
	if code != 0 || !strings.Contains(out, "host  HOST") || !strings.Contains(out, "mine  HOST") {
		t.Errorf("env health: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, _, stderr := cli(t, server, "env", "update", "mine", "--config", `{"bogus": 1}`); code != 1 || !strings.Contains(stderr, "(HTTP 400)") {
		t.Errorf("env update with a config the plugin refuses: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli(t, server, "env", "health", "nope"); code != 1 || !strings.Contains(stderr, "env health nope:") {
		t.Errorf("env health nope: exit %d, stderr %q", code, stderr)
	}
}

// TestE2ELsKillInPTY runs the real binary on a terminal, as a user does:
// ls's table, and kill of an ambiguous prefix with its message and exit
// status 1.
func TestE2ELsKillInPTY(t *testing.T) {
	srv := startServer(t)
	for _, id := range []string{"tty-a", "tty-b"} {
		srv.CreateSession(t, map[string]any{"id": id, "command": []string{"/bin/sh"}})
	}
	cmd, _, out := startCLI(t, "ls", "--server", srv.URL)
	out.wait(t, regexp.MustCompile(`ID +COMMAND +ENVIRONMENT +STATUS +CLIENTS +SIZE +AGE +IDLE +DETACHED +EXIT +REASON\r\ntty-a +/bin/sh +host +(ACTIVE|IDLE) +0 +80x24 .*\r\ntty-b `))
	if err := waitExit(cmd); err != nil {
		t.Errorf("ls: %v", err)
	}

	cmd, _, out = startCLI(t, "kill", "--server", srv.URL, "tty")
	out.wait(t, regexp.MustCompile(`ptyhost: kill: session ID prefix tty is ambiguous: 2 sessions' IDs start with it \(tty-a, tty-b\); type more of it\r\n`))
	var ee *exec.ExitError
	if err := waitExit(cmd); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("kill tty: %v, want exit status 1", err)
	}
	for _, id := range []string{"tty-a", "tty-b"} {
		if st := srv.Session(t, id)["status"]; st == "TERMINATED" {
			t.Errorf("%s was killed by an ambiguous prefix", id)
		}
	}
}
