package gormstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

func TestOpenBadDSN(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		want string // in the error
	}{
		{"empty", "", "sqlite:PATH"},
		{"no scheme", "/var/lib/ptyhost.db", "sqlite:PATH"},
		{"mysql", "mysql://root:secret@localhost/ptyhost", "sqlite:PATH"},
		{"key value", "host=localhost password=secret", "sqlite:PATH"},
		{"sqlite without path", "sqlite:", "no path"},
		{"sqlite dir is a file", "sqlite:" + filepath.Join("/dev/null", "x.db"), "sqlite"},
		{"postgres unreachable", "postgres://ptyhost:secret@127.0.0.1:1/ptyhost?connect_timeout=5", "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gormstore.Open(context.Background(), tt.dsn, gormstore.Options{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tt.dsn)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open error shows the password: %q", err)
			}
		})
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := gormstore.Open(ctx, sqliteDSN(t), gormstore.Options{})
	if err == nil {
		_ = s.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled ctx: %v, want context.Canceled", err)
	}
}

func TestSQLiteMemory(t *testing.T) {
	s := openStore(t, "sqlite::memory:", newClock())
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			if err := s.SaveSession(ctx, core.SessionRecord{ID: id, Status: core.StatusIdle}); err != nil {
				t.Errorf("SaveSession: %v", err)
			}
		}()
	}
	wg.Wait()
	// Every goroutine saw the same database.
	recs, err := s.ListSessions(ctx)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if len(recs) != 10 {
		t.Errorf("ListSessions: %d rows, want 10", len(recs))
	}
}

func TestSQLiteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openStore(t, "sqlite:"+filepath.Join(dir, "ptyhost.db"), newClock())
	var mode string
	if err := s.Gorm().Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var timeout int
	if err := s.Gorm().Raw("PRAGMA busy_timeout").Scan(&timeout).Error; err != nil {
		t.Fatal(err)
	}
	if timeout < 1000 {
		t.Errorf("busy_timeout = %dms, want at least 1s", timeout)
	}
	// The database holds every environment's variables: its user's alone,
	// and so are the files SQLite makes beside it.
	if err := s.Gorm().Exec("CREATE TABLE mode_probe (x int)").Error; err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ptyhost.db", "ptyhost.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi.Mode(), err)
		}
	}
}

// TestLoggerKeepsArgumentsOut checks statements reach the slog logger at
// debug without their arguments, which may hold secrets from a config.
func TestLoggerKeepsArgumentsOut(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := gormstore.Open(context.Background(), sqliteDSN(t), gormstore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := core.Environment{ID: "ssh", Type: "ssh", Config: json.RawMessage(`{"password":"hunter2"}`)}
	if err := s.CreateEnvironment(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(context.Background(), "missing"); !errors.Is(err, core.ErrSessionNotFound) {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "execution_environments") {
		t.Errorf("no statement logged at debug:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("log shows a statement argument:\n%s", out)
	}
	if strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Errorf("normal operation logged above debug:\n%s", out)
	}
}

func TestNewNil(t *testing.T) {
	if _, err := gormstore.New(nil, gormstore.Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
}
