package main

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// lsIDs returns the first field of every line of ls's table but the
// header.
func lsIDs(out string) []string {
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		ids = append(ids, strings.Fields(line)[0])
	}
	return ids
}

// ls lists the running sessions unless -a or a status filter says
// otherwise; the filter goes to the server, and is applied again to what
// it answers (the fake server ignores it).
func TestLsFilters(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantQuery url.Values
		wantIDs   []string
	}{
		{"default: running", nil, url.Values{"status": {"STARTING,ACTIVE,IDLE"}}, []string{"s1"}},
		{"all", []string{"-a"}, url.Values{}, []string{"s1", "s2", "s3"}},
		{"all, long", []string{"--all"}, url.Values{}, []string{"s1", "s2", "s3"}},
		{"status in any case", []string{"--filter", "status=terminated"}, url.Values{"status": {"TERMINATED"}}, []string{"s2"}},
		{"ended and an environment", []string{"--filter", "status=ended", "--filter", "env=host"},
			url.Values{"status": {"TERMINATED,ERROR"}, "environment_id": {"host"}}, []string{"s3"}},
		{"statuses comma-separated", []string{"--filter", "status=ACTIVE,error"}, url.Values{"status": {"ACTIVE,ERROR"}}, []string{"s1", "s3"}},
		{"two environments", []string{"-a", "--filter", "env=docker", "--filter", "environment=host"}, url.Values{}, []string{"s1", "s2", "s3"}},
		{"running in docker", []string{"--filter", "env=docker"}, url.Values{"status": {"STARTING,ACTIVE,IDLE"}, "environment_id": {"docker"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			code, out, stderr := runCmd(t, append([]string{"ls", "--server", f.srv.URL}, tt.args...)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if got := lsIDs(out); !slices.Equal(got, tt.wantIDs) {
				t.Errorf("listed %q, want %q:\n%s", got, tt.wantIDs, out)
			}
			r := f.requestsSoFar()
			if len(r) != 1 {
				t.Fatalf("requests %v, want one", r)
			}
			q, _ := url.ParseQuery(r[0].query)
			q.Del("limit")
			if q.Encode() != tt.wantQuery.Encode() {
				t.Errorf("query %q, want %q", q.Encode(), tt.wantQuery.Encode())
			}
		})
	}
}

func TestLsQuiet(t *testing.T) {
	f := newFakeServer(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-q", "-a"}, "s1\ns2\ns3\n"},
		{[]string{"-q"}, "s1\n"},
		{[]string{"-q", "--filter", "status=running", "--filter", "env=docker"}, ""},
	} {
		code, out, stderr := runCmd(t, append([]string{"ls", "--server", f.srv.URL}, tt.args...)...)
		if code != 0 || out != tt.want || stderr != "" {
			t.Errorf("ls %q: exit %d, stdout %q, stderr %q; want %q", tt.args, code, out, stderr, tt.want)
		}
	}
}

// Bad filters are usage errors (exit 2) and send nothing.
func TestLsBadInput(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no =", []string{"--filter", "running"}, `invalid value "running" for flag -filter: want status=STATUS or env=ID, got "running"`},
		{"unknown key", []string{"--filter", "color=red"}, `unknown filter "color": want status=STATUS or env=ID`},
		{"unknown status", []string{"--filter", "status=DONE"}, `status "DONE": want STARTING, ACTIVE, IDLE, TERMINATED, ERROR, running or ended`},
		{"empty status", []string{"--filter", "status="}, `status "": want STARTING`},
		{"empty env", []string{"--filter", "env="}, "env: want an environment ID"},
		{"no value", []string{"--filter"}, "flag needs an argument: -filter"},
		{"-q and --json", []string{"-q", "--json"}, "ls: give -q or --json, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, append([]string{"ls", "--server", f.srv.URL}, tt.args...)...)
			if code != 2 || out != "" || !strings.HasPrefix(stderr, "ptyhost: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, stderr, tt.want)
			}
		})
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("bad input sent requests: %v", r)
	}
}

// The table's columns, with a fixed clock; text from the server cannot
// split a cell or reach the terminal as an escape sequence.
func TestPrintSessions(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	code := 0
	rows := []lsRow{
		{SessionRecord: core.SessionRecord{ID: "live", EnvironmentID: "host", Status: core.StatusIdle, Cols: 80, Rows: 24,
			CreatedAt: now.Add(-26 * time.Hour), LastActiveAt: now.Add(-90 * time.Second), DetachedAt: now.Add(-45 * time.Second),
			Command: []string{"claude", "--model", "a b"}}},
		{SessionRecord: core.SessionRecord{ID: "gone", EnvironmentID: "dev", Status: core.StatusError, Cols: 100, Rows: 30,
			CreatedAt: now.Add(-3 * time.Minute), LastActiveAt: now.Add(-time.Minute), ExitCode: &code,
			StatusReason: "ssh:\tconnection\x1b[31m lost\nto host"}},
	}
	var b strings.Builder
	if err := printSessions(&b, rows, now); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ID    COMMAND               ENVIRONMENT  STATUS  CLIENTS  SIZE    AGE   IDLE  DETACHED  EXIT  REASON",
		`live  claude --model "a b"  host         IDLE    0        80x24   1d2h  1m    45s       -     -`,
		"gone  -                     dev          ERROR   0        100x30  3m    -     -         0     ssh:?connection?[31m lost?to host",
	}
	if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCommandCell(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{nil, "-"},
		{[]string{"/bin/sh"}, "/bin/sh"},
		{[]string{"sh", "-c", "echo hi", ""}, `sh -c "echo hi" ""`},
		{[]string{"python3", "-m", "http.server", "--bind", "127.0.0.1", "8000"}, "python3 -m http.server --bind…"},
		{[]string{"printf", "\x1b]0;title\a"}, "printf ?]0;title?"},
	} {
		if got := commandCell(tt.argv); got != tt.want {
			t.Errorf("commandCell(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}
