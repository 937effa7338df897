package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

func TestParseConfig(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	me, err := currentUser()
	if err != nil {
		t.Skip("no current user")
	}
	tests := []struct {
		name   string
		config string
		check  func(t *testing.T, c *config)
	}{
		{"defaults", `{"host": "example.com"}`, func(t *testing.T, c *config) {
			want := endpoint{Host: "example.com", Port: 22, User: me, KnownHosts: filepath.Join(home, ".ssh/known_hosts"), HostKeyCheck: checkStrict}
			if c.Target.Host != want.Host || c.Target.Port != want.Port || c.Target.User != want.User ||
				c.Target.KnownHosts != want.KnownHosts || c.Target.HostKeyCheck != want.HostKeyCheck {
				t.Errorf("target = %+v, want %+v", c.Target, want)
			}
			if c.ConnectTimeout != 10*time.Second || c.KeepaliveInterval != 15*time.Second || c.KeepaliveCount != 3 || c.Linger != 30*time.Second {
				t.Errorf("durations = %v %v %d %v", c.ConnectTimeout, c.KeepaliveInterval, c.KeepaliveCount, c.Linger)
			}
			if c.MaxConnections != 8 {
				t.Errorf("max_connections = %d, want 8", c.MaxConnections)
			}
			if c.Jump != nil {
				t.Errorf("jump = %+v", c.Jump)
			}
		}},
		{"everything", `{"host": "10.0.0.5", "port": 2222, "user": "deploy", "identity_file": "~/.ssh/id_deploy",
			"passphrase_env": "DEPLOY_PASSPHRASE", "agent": false, "password_env": "DEPLOY_PW", "known_hosts": "/etc/ptyhost/known_hosts",
			"host_key_check": "accept-new", "connect_timeout": "3s", "keepalive_interval": "0s", "keepalive_count": 5, "linger": "1m",
			"max_connections": 3, "env": {"EDITOR": "vim"}, "shell": "/bin/bash"}`, func(t *testing.T, c *config) {
			if c.Target.addr() != "10.0.0.5:2222" || c.Target.User != "deploy" || c.Target.IdentityFile != filepath.Join(home, ".ssh/id_deploy") ||
				c.Target.HostKeyCheck != checkAcceptNew || *c.Target.Agent || c.Target.PasswordEnv != "DEPLOY_PW" {
				t.Errorf("target = %+v", c.Target)
			}
			if c.ConnectTimeout != 3*time.Second || c.KeepaliveInterval != 0 || c.KeepaliveCount != 5 || c.Linger != time.Minute {
				t.Errorf("durations = %v %v %d %v", c.ConnectTimeout, c.KeepaliveInterval, c.KeepaliveCount, c.Linger)
			}
			if c.MaxConnections != 3 {
				t.Errorf("max_connections = %d, want 3", c.MaxConnections)
			}
			if c.Env["EDITOR"] != "vim" || c.Shell != "/bin/bash" {
				t.Errorf("env %v shell %q", c.Env, c.Shell)
			}
		}},
		{"jump string", `{"host": "inner", "user": "u", "identity_file": "/k", "password_env": "PW", "jump": "ops@bastion.example:2200"}`, func(t *testing.T, c *config) {
			j := c.Jump
			if j == nil || j.Host != "bastion.example" || j.Port != 2200 || j.User != "ops" {
				t.Fatalf("jump = %+v", j)
			}
			if j.IdentityFile != "/k" || j.PasswordEnv != "" || j.HostKeyCheck != checkStrict {
				t.Errorf("jump inherits %+v; want the identity file, never the password", j)
			}
		}},
		{"jump host only", `{"host": "inner", "jump": "bastion"}`, func(t *testing.T, c *config) {
			if c.Jump.addr() != "bastion:22" || c.Jump.User != me {
				t.Errorf("jump = %+v", c.Jump)
			}
		}},
		{"jump ipv6", `{"host": "inner", "jump": "[::1]:2022"}`, func(t *testing.T, c *config) {
			if c.Jump.addr() != "[::1]:2022" {
				t.Errorf("jump = %+v", c.Jump)
			}
		}},
		{"jump object", `{"host": "inner", "host_key_check": "accept-new", "jump": {"host": "b", "port": 23, "user": "j", "password_env": "JPW", "host_key_check": "strict"}}`, func(t *testing.T, c *config) {
			j := c.Jump
			if j.addr() != "b:23" || j.User != "j" || j.PasswordEnv != "JPW" || j.HostKeyCheck != checkStrict {
				t.Errorf("jump = %+v", j)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(json.RawMessage(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{"empty", ``, "host is required"},
		{"null", `null`, "host is required"},
		{"no host", `{"port": 22}`, "host is required"},
		{"not an object", `[1]`, "cannot unmarshal"},
		{"trailing data", `{"host": "h"} {}`, "trailing data"},
		{"unknown field", `{"host": "h", "hostname": "x"}`, `unknown field "hostname"`},
		{"literal password", `{"host": "h", "password": "hunter2"}`, "password: secrets are never stored"},
		{"literal passphrase", `{"host": "h", "identity_file": "/k", "passphrase": "x"}`, `"passphrase_env"`},
		{"literal private key", `{"host": "h", "private_key": "-----BEGIN"}`, `"identity_file"`},
		{"literal password in jump", `{"host": "h", "jump": {"host": "b", "password": "x"}}`, "jump.password: secrets"},
		{"host with space", `{"host": "a b"}`, "not a host name"},
		{"host option", `{"host": "-oProxyCommand=x"}`, "not a host name"},
		{"host wildcard", `{"host": "*"}`, `host: "*" is not a host name`},
		{"host pattern", `{"host": "prod-*.internal"}`, "known_hosts patterns"},
		{"host question mark", `{"host": "db?"}`, "not a host name"},
		{"host list", `{"host": "evil.example,prod.internal"}`, `host: "evil.example,prod.internal" is not a host name`},
		{"host negation", `{"host": "!prod.internal"}`, "not a host name"},
		{"host hashed", `{"host": "|1|abc=|def="}`, "not a host name"},
		{"host bracketed name", `{"host": "[prod.internal]"}`, "not a host name"},
		{"host bracketed pattern", `{"host": "[*]:22"}`, "not a host name"},
		{"host bracketed IPv4", `{"host": "[10.0.0.1]"}`, "not a host name"},
		{"host with port", `{"host": "db:22"}`, "not a host name"},
		{"host empty label", `{"host": "a..b"}`, "not a host name"},
		{"host label option", `{"host": "a.-b"}`, "not a host name"},
		{"host slash", `{"host": "a/b"}`, "not a host name"},
		{"host user", `{"host": "u@h"}`, "not a host name"},
		{"host zone pattern", `{"host": "fe80::1%*"}`, "not a host name"},
		{"host long label", `{"host": "` + strings.Repeat("a", 64) + `.example"}`, "not a host name"},
		{"jump host wildcard", `{"host": "h", "jump": "*"}`, `jump.host: "*" is not a host name`},
		{"jump host list", `{"host": "h", "jump": "ops@a,b:22"}`, `jump.host: "a,b" is not a host name`},
		{"jump object host pattern", `{"host": "h", "jump": {"host": "bastion?"}}`, `jump.host: "bastion?" is not a host name`},
		{"port string", `{"host": "h", "port": "22"}`, "cannot unmarshal string"},
		{"port range", `{"host": "h", "port": 70000}`, "port: 70000 is not in 1..65535"},
		{"negative port", `{"host": "h", "port": -1}`, "port: -1"},
		{"relative identity", `{"host": "h", "identity_file": "id_rsa"}`, "identity_file: \"id_rsa\" is not an absolute path"},
		{"passphrase without identity", `{"host": "h", "passphrase_env": "P"}`, "passphrase_env: needs identity_file"},
		{"bad passphrase env", `{"host": "h", "identity_file": "/k", "passphrase_env": "MY-PASS"}`, "not an environment variable name"},
		{"bad password env", `{"host": "h", "password_env": "1PW"}`, "password_env"},
		{"agent string", `{"host": "h", "agent": "yes"}`, "cannot unmarshal string"},
		{"host key check", `{"host": "h", "host_key_check": "yes"}`, `host_key_check: "yes" is not one of strict, accept-new, off`},
		{"relative known hosts", `{"host": "h", "known_hosts": "known"}`, "known_hosts"},
		{"bad timeout", `{"host": "h", "connect_timeout": "10"}`, `connect_timeout: "10" is not a duration`},
		{"zero timeout", `{"host": "h", "connect_timeout": "0s"}`, "connect_timeout: must be positive"},
		{"timeout number", `{"host": "h", "connect_timeout": 10}`, "cannot unmarshal number"},
		{"huge timeout", `{"host": "h", "connect_timeout": "2h"}`, "not in 0s..10m0s"},
		{"tiny keepalive", `{"host": "h", "keepalive_interval": "10ms"}`, "below the minimum"},
		{"keepalive count", `{"host": "h", "keepalive_count": 0}`, "keepalive_count: 0"},
		{"negative linger", `{"host": "h", "linger": "-1s"}`, "linger"},
		{"zero max_connections", `{"host": "h", "max_connections": 0}`, "max_connections: 0 is not in 1..100"},
		{"huge max_connections", `{"host": "h", "max_connections": 101}`, "max_connections: 101 is not in 1..100"},
		{"max_connections string", `{"host": "h", "max_connections": "8"}`, "cannot unmarshal string"},
		{"env name", `{"host": "h", "env": {"A-B": "x"}}`, `env: variable name "A-B"`},
		{"env nul", `{"host": "h", "env": {"A": "x\u0000"}}`, "NUL"},
		{"shell option", `{"host": "h", "shell": "-i"}`, "shell"},
		{"jump empty", `{"host": "h", "jump": ""}`, "jump: want"},
		{"jump bad port", `{"host": "h", "jump": "b:x"}`, `port "x" is not a number`},
		{"jump empty user", `{"host": "h", "jump": "@b"}`, "empty user"},
		{"jump unknown field", `{"host": "h", "jump": {"host": "b", "jump": "c"}}`, `jump: unknown field "jump"`},
		{"jump port string", `{"host": "h", "jump": {"host": "b", "port": "22"}}`, "jump.port: cannot unmarshal string into integer"},
		{"jump no host", `{"host": "h", "jump": {"port": 22}}`, "jump.host is required"},
		{"jump number", `{"host": "h", "jump": 5}`, "jump: cannot unmarshal number into object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(json.RawMessage(tt.config))
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseConfig(%s) = %v, want ErrInvalidConfig mentioning %q", tt.config, err, tt.want)
			}
		})
	}
}

// Host names and IP addresses are accepted, a bracketed IPv6 address
// without its brackets; names in lower case and addresses in their
// canonical form, as OpenSSH looks them up in known_hosts: "LOCALHOST"
// kept as given missed the pinned "localhost" entry, and accept-new added
// the key the server offered.
func TestParseConfigHosts(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"example.com", "example.com"},
		{"example.com.", "example.com."},
		{"db-1.prod_eu.internal", "db-1.prod_eu.internal"},
		{"localhost", "localhost"},
		{"DB1", "db1"},
		{"LOCALHOST", "localhost"},
		{"Example.COM.", "example.com."},
		{"FE80::1", "fe80::1"},
		{"[2001:DB8:0:0::5]", "2001:db8::5"},
		{"10.0.0.5", "10.0.0.5"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"2001:db8::5", "2001:db8::5"},
		{"[2001:db8::5]", "2001:db8::5"},
		{"::ffff:10.0.0.5", "::ffff:10.0.0.5"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"[fe80::1%eth0.100]", "fe80::1%eth0.100"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{"host": tt.host, "user": "u", "jump": map[string]any{"host": tt.host}})
			c, err := parseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			if c.Target.Host != tt.want || c.Jump.Host != tt.want {
				t.Errorf("host %q, jump host %q; want %q", c.Target.Host, c.Jump.Host, tt.want)
			}
		})
	}
}

// The pool key changes with anything that changes the connection.
func TestConfigHash(t *testing.T) {
	parse := func(s string) string {
		c, err := parseConfig(json.RawMessage(s))
		if err != nil {
			t.Fatal(err)
		}
		return c.hash()
	}
	a := parse(`{"host": "h", "user": "u"}`)
	if b := parse(`{"user": "u", "host": "h", "port": 22}`); a != b {
		t.Errorf("equal configs hash differently: %s %s", a, b)
	}
	for _, other := range []string{
		`{"host": "h", "user": "v"}`,
		`{"host": "h", "user": "u", "port": 23}`,
		`{"host": "h", "user": "u", "jump": "b"}`,
		`{"host": "h", "user": "u", "password_env": "X"}`,
		`{"host": "h", "user": "u", "global_known_hosts": ""}`,
		`{"host": "h", "user": "u", "global_known_hosts": "/etc/ssh/ssh_known_hosts"}`,
	} {
		if parse(other) == a {
			t.Errorf("%s hashes like the base config", other)
		}
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	encrypted := filepath.Join(dir, "encrypted")
	writeKey(t, plain, "")
	writeKey(t, encrypted, "s3cret")
	open := filepath.Join(dir, "open")
	writeKey(t, open, "")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PASS": "s3cret", "WRONG": "nope", "PW": "pw"}
	getenv := func(k string) string { return env[k] }
	yes := true
	tests := []struct {
		name string
		ep   endpoint
		want string // "" = no error; else part of the message
		srcs string // describe() when it works
	}{
		{"plain key", endpoint{IdentityFile: plain}, "", "identity_file " + plain},
		{"encrypted key", endpoint{IdentityFile: encrypted, PassphraseEnv: "PASS"}, "", "identity_file " + encrypted},
		{"encrypted without passphrase_env", endpoint{IdentityFile: encrypted}, "protected by a passphrase: name the variable", ""},
		{"passphrase unset", endpoint{IdentityFile: encrypted, PassphraseEnv: "UNSET"}, "passphrase_env: UNSET is not set", ""},
		{"wrong passphrase", endpoint{IdentityFile: encrypted, PassphraseEnv: "WRONG"}, "the passphrase in $WRONG is wrong", ""},
		{"missing key", endpoint{IdentityFile: filepath.Join(dir, "nope")}, "does not exist", ""},
		{"not a key", endpoint{IdentityFile: "/etc/hostname"}, "identity_file /etc/hostname", ""},
		// Refused at once: reading a FIFO waited for a writer, for ever.
		{"a FIFO", endpoint{IdentityFile: fifo}, "is not a regular file", ""},
		{"a device", endpoint{IdentityFile: "/dev/zero"}, "is not a regular file", ""},
		{"readable by others", endpoint{IdentityFile: open}, "can be read by other users (mode 0644)", ""},
		{"password", endpoint{PasswordEnv: "PW"}, "", "password from $PW"},
		{"password unset", endpoint{PasswordEnv: "UNSET"}, "password_env: UNSET is not set", ""},
		{"agent without socket", endpoint{Agent: &yes}, "SSH_AUTH_SOCK is not set", ""},
		{"key and password", endpoint{IdentityFile: plain, PasswordEnv: "PW"}, "", "identity_file " + plain + ", password from $PW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ep.Host, tt.ep.Port, tt.ep.User = "h", 22, "u"
			c, err := loadCredentials(&tt.ep, getenv)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.describe() != tt.srcs {
					t.Errorf("describe() = %q, want %q", c.describe(), tt.srcs)
				}
				if strings.Contains(c.describe(), "s3cret") || strings.Contains(c.describe(), "pw,") {
					t.Errorf("describe() shows a secret: %q", c.describe())
				}
				return
			}
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadCredentials = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}
