package gormstore_test

import (
	"net/url"
	"testing"
)

// Open's PostgreSQL connections end a transaction left idle for 5 s,
// unless the DSN sets the bound itself, as a URL parameter or the libpq
// way (options=-c …).
func TestIdleTransactionTimeout(t *testing.T) {
	dsn := postgresFreshDSN(t)
	for extra, want := range map[string]string{
		"": "5s",
		"idle_in_transaction_session_timeout=60000":                "1min",
		"options=-c%20idle_in_transaction_session_timeout%3D60000": "1min",
	} {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if extra != "" {
			u.RawQuery += "&" + extra
		}
		db := openReal(t, u.String())
		var got string
		if err := db.Gorm().Raw("SHOW idle_in_transaction_session_timeout").Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("DSN with %q: idle_in_transaction_session_timeout = %s, want %s", extra, got, want)
		}
	}
}
