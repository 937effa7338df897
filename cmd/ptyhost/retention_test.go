package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

func TestRetentionSetting(t *testing.T) {
	clearServeEnv(t)
	t.Setenv("PTYHOST_RETENTION", "") // restored after the test
	parse := func(args ...string) (time.Duration, error) {
		t.Helper()
		c, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard})
		return time.Duration(c.retention), err
	}
	tests := []struct {
		args []string
		env  string
		want time.Duration
	}{
		{nil, "", core.DefaultRetention},
		{[]string{"--retention", "72h"}, "", 72 * time.Hour},
		{[]string{"--retention", "30d"}, "", 30 * 24 * time.Hour},
		{[]string{"--retention", "0"}, "", core.KeepForever},
		{[]string{"--retention", "forever"}, "", core.KeepForever},
		{[]string{"--retention=-1"}, "", core.KeepForever},
		{nil, "1h", time.Hour},
		{[]string{"--retention", "2h"}, "1h", 2 * time.Hour},
		{[]string{"--config", writeConfig(t, "retention = \"14d\"\n")}, "", 14 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Setenv("PTYHOST_RETENTION", tt.env)
		if tt.env == "" {
			os.Unsetenv("PTYHOST_RETENTION")
		}
		got, err := parse(tt.args...)
		if err != nil || got != tt.want {
			t.Errorf("%v with PTYHOST_RETENTION=%q: %v, %v; want %v", tt.args, tt.env, got, err, tt.want)
		}
	}
	os.Unsetenv("PTYHOST_RETENTION")
	for _, bad := range []string{"soon", "-5m", "0d", "1.5d"} {
		_, err := parse("--retention", bad)
		if err == nil || !strings.Contains(err.Error(), "want a duration > 0") {
			t.Errorf("--retention %s: %v, want an error saying what it wants", bad, err)
		}
	}
	if _, err := parse("--config", writeConfig(t, "retention = \"later\"\n")); err == nil || !strings.Contains(err.Error(), "retention") {
		t.Errorf("retention = later in the file: %v", err)
	}
}

// The server deletes ended sessions' records past --retention, and keeps
// the live ones.
func TestServerAppliesRetention(t *testing.T) {
	srv := startServerWith(t, "--retention", "1s")
	for _, id := range []string{"ended", "live"} {
		code, body := srv.Request(t, "POST", "/api/v1/sessions", `{"id":"`+id+`","environment_id":"host","command":["sleep","3600"]}`)
		if code != 201 {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
	}
	if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/ended", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/ended", nil); code != 200 || body["status"] != "TERMINATED" {
		t.Fatalf("the ended session right after: %d %v", code, body)
	}
	e2etest.Eventually(t, 15*time.Second, "the ended session's record to be deleted", func() bool {
		code, _ := srv.Request(t, "GET", "/api/v1/sessions/ended", nil)
		return code == 404
	}, nil)
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/live", nil); code != 200 || body["status"] != "IDLE" && body["status"] != "ACTIVE" {
		t.Errorf("the live session: %d %v", code, body)
	}
}
