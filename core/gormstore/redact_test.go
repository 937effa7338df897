package gormstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core/gormstore"
)

// TestRedactDSN: every way of writing a PostgreSQL password in a DSN is
// masked, and the rest of the DSN stays as written.
func TestRedactDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"empty", "", ""},
		{"sqlite", "sqlite:/var/lib/ptyhost/ptyhost.db", "sqlite:/var/lib/ptyhost/ptyhost.db"},
		{"sqlite in memory", "sqlite::memory:", "sqlite::memory:"},
		{"sqlite query", "sqlite:/x.db?_pragma=foreign_keys(1)&password=S3cret", "sqlite:/x.db?_pragma=foreign_keys(1)&password=xxxxx"},
		{"url without password", "postgres://ptyhost@db/ptyhost?sslmode=require", "postgres://ptyhost@db/ptyhost?sslmode=require"},
		{"url user password", "postgres://ptyhost:S3cret@db/ptyhost", "postgres://ptyhost:xxxxx@db/ptyhost"},
		{"url query password", "postgres://ptyhost@db/ptyhost?password=S3cret", "postgres://ptyhost@db/ptyhost?password=xxxxx"},
		{"url query sslpassword", "postgresql://ptyhost@db/ptyhost?sslmode=verify-full&sslpassword=S3cret&connect_timeout=5",
			"postgresql://ptyhost@db/ptyhost?sslmode=verify-full&sslpassword=xxxxx&connect_timeout=5"},
		{"url query password in upper case", "postgres://db/p?PASSWORD=S3cret", "postgres://db/p?PASSWORD=xxxxx"},
		{"url query escaped name", "postgres://db/p?pass%77ord=S3cret", "postgres://db/p?pass%77ord=xxxxx"},
		{"url query after a semicolon", "postgres://db/p?a=1;password=S3cret", "postgres://db/p?a=1;password=xxxxx"},
		{"url both", "postgres://u:S3cret@db/p?password=S3cret", "postgres://u:xxxxx@db/p?password=xxxxx"},
		{"url fragment", "postgres://db/p#S3cret", "postgres://db/p"},
		{"url that does not parse", "postgres://u:S3#cret@db/p", "postgres:…"},
		{"key value", "host=db user=ptyhost password=S3cret dbname=ptyhost", "host=db user=ptyhost password=xxxxx dbname=ptyhost"},
		{"key value spaced", "host = db password = S3cret", "host = db password = xxxxx"},
		{"key value quoted", `host=db password='S3cret with \' spaces' sslpassword=S3cret`, "host=db password=xxxxx sslpassword=xxxxx"},
		{"key value escaped space", `password=S3\ cret host=db`, "password=xxxxx host=db"},
		{"key value unterminated quote", "host=db password='S3cret", "<unparsable DSN>"},
		{"key value without a value", "host=db password", "<unparsable DSN>"},
		{"no scheme", "/var/lib/ptyhost.db", "<unparsable DSN>"},
		{"opaque", "postgres:S3cret", "postgres:…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gormstore.RedactDSN(tt.dsn)
			if got != tt.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
			if strings.Contains(got, "S3") {
				t.Errorf("RedactDSN(%q) = %q shows the password", tt.dsn, got)
			}
		})
	}
}

// TestOpenErrorHidesQueryPassword: Open's errors name the DSN without a
// password given in its query.
func TestOpenErrorHidesQueryPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://ptyhost@127.0.0.1:1/ptyhost?password=S3cret&connect_timeout=5",
		"postgres://ptyhost@127.0.0.1:1/ptyhost?sslmode=disable&sslpassword=S3cret&connect_timeout=5",
		"host=127.0.0.1 port=1 password=S3cret",
		"sqlite:?password=S3cret",
	} {
		s, err := gormstore.Open(context.Background(), dsn, gormstore.Options{})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("Open error shows the password: %q", err)
		}
	}
}
