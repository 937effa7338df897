package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// An empty --token, --read-token, --cluster-secret or --db is refused:
// given, it would replace the configuration file's value, and an empty
// --token "$TOKEN" (TOKEN unset) would serve without a token. So is an
// empty --config, which served without the file PTYHOST_CONFIG names, its
// token included.
func TestServeEmptySecretFlags(t *testing.T) {
	clearServeEnv(t)
	file := writeConfig(t, `listen = "127.0.0.1:7633"
token = "aaaaaaaaaaaaaaaaaaaaaaa"
read_token = "bbbbbbbbbbbbbbbbbbbbbbb"
db = "sqlite:/tmp/x.db"
`)
	t.Setenv("PTYHOST_CONFIG", file)
	for _, name := range []string{"token", "read-token", "cluster-secret", "db", "config"} {
		args := []string{"--config", file, "--" + name, ""}
		if name == "config" {
			args = args[2:] // PTYHOST_CONFIG names the file
		}
		_, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--"+name+" is empty") || !strings.Contains(err.Error(), "omit the flag") {
			t.Errorf("--%s \"\": %v; want a usage error saying it is empty", name, err)
		}
	}
	// The variables set to "" still count as unset: the file's token holds.
	t.Setenv("PTYHOST_CONFIG", "")
	t.Setenv("PTYHOST_TOKEN", "")
	c, err := parseServeFlags([]string{"--config", file}, stdio{out: io.Discard, err: io.Discard})
	if err != nil || c.token != "aaaaaaaaaaaaaaaaaaaaaaa" {
		t.Fatalf("PTYHOST_TOKEN=\"\": token %q, %v; want the file's", c.token, err)
	}
}
