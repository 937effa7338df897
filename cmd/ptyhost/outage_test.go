package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// postgresSchemaDSN returns the test PostgreSQL's DSN, reached through a
// proxy, with a schema of the test's own (dropped at its end).
func postgresSchemaDSN(t *testing.T) (string, *e2etest.Proxy) {
	t.Helper()
	base := os.Getenv("PTYHOST_TEST_POSTGRES_DSN")
	if base == "" {
		msg := "PTYHOST_TEST_POSTGRES_DSN not set: run scripts/services/postgres.sh start (make test does)"
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "ptyhost_outage_" + hex.EncodeToString(b[:])
	admin, err := gormstore.Open(t.Context(), base, gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := admin.Gorm().Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Gorm().Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := e2etest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String(), proxy
}

// startServerWith runs the ptyhost binary with extra flags.
func startServerWith(t *testing.T, args ...string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, e2etest.Options{Args: args})
}

// During a PostgreSQL outage the server answers creates with 503, starts
// nothing, and says so in /healthz; live sessions go on; when the database
// is back, so is everything.
func TestPostgresOutage(t *testing.T) {
	dsn, proxy := postgresSchemaDSN(t)
	srv := startServerWith(t, "--db", dsn)
	if code, body := srv.Request(t, "GET", "/healthz", nil); code != 200 || body["store"] != "ok" {
		t.Fatalf("healthz: %d %v", code, body)
	}
	create := func(id string) (int, map[string]any) {
		return srv.Request(t, "POST", "/api/v1/sessions", fmt.Sprintf(`{"id":%q,"environment_id":"host","command":["sleep","3600"]}`, id))
	}
	if code, body := create("before"); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}

	proxy.Stop()
	e2etest.Eventually(t, 15*time.Second, "healthz to report the database down", func() bool {
		code, body := srv.Request(t, "GET", "/healthz", nil)
		return code == 503 && body["status"] == "degraded" && body["store"] == "unavailable"
	}, nil)
	code, body := create("during")
	if msg, _ := body["error"].(string); code != 503 || !strings.Contains(msg, "database is unavailable") {
		t.Errorf("create during the outage: %d %v; want 503 saying the database is unavailable", code, body)
	}
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/before", nil); code != 200 || body["status"] != "ACTIVE" {
		t.Errorf("the live session during the outage: %d %v", code, body)
	}

	proxy.Start()
	e2etest.Eventually(t, 15*time.Second, "healthz to recover", func() bool {
		code, body := srv.Request(t, "GET", "/healthz", nil)
		return code == 200 && body["store"] == "ok"
	}, nil)
	// Nothing of the refused create was left behind: not its record, and
	// not its id.
	if code, body := srv.Request(t, "GET", "/api/v1/sessions/during", nil); code != 404 {
		t.Errorf("the refused session after the outage: %d %v, want 404", code, body)
	}
	if code, body := create("during"); code != 201 {
		t.Errorf("create after the outage: %d %v", code, body)
	}
	code, body = srv.Request(t, "GET", "/api/v1/sessions?status=ACTIVE", nil)
	list, ok := body["sessions"].([]any)
	if code != 200 || !ok {
		t.Fatalf("list after the outage: %d %v", code, body)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	if fmt.Sprint(ids) != "[before during]" {
		t.Errorf("ACTIVE sessions after the outage: %v, want before and during", ids)
	}
}
