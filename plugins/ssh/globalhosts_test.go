package main

// The system-wide known_hosts files (global_known_hosts), read beside the
// endpoint's own as OpenSSH reads its GlobalKnownHostsFile: a key pinned
// there verifies, a different one is a changed key even for accept-new,
// and accept-new never writes there.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/ptyhost/ptyhost/shared"
)

func TestGlobalKnownHosts(t *testing.T) {
	ca, hostKey, otherKey := newSigner(t), newSigner(t), newSigner(t)
	certByCA := hostCert(t, hostKey, ca)
	hostLine := "[127.0.0.1]:%d " + authorized(hostKey.PublicKey())
	otherLine := "[127.0.0.1]:%d " + authorized(otherKey.PublicKey())
	caLine := "@cert-authority [127.0.0.*]:%d " + authorized(ca.PublicKey())
	revokedLine := "@revoked * " + authorized(hostKey.PublicKey())
	fp := func(s ssh.Signer) string { return ssh.FingerprintSHA256(s.PublicKey()) }
	const missing = "missing"

	tests := []struct {
		name   string
		keys   []ssh.Signer // the server's
		user   []string     // the endpoint's known_hosts; nil: no file
		global []string     // the global file; missing: no file
		mode   string
		want   []string // parts of the error ("GLOBAL" stands for its path); none: it connects
		// recorded says that accept-new records the server's key in the
		// user's file (which is otherwise left as it was).
		recorded bool
	}{
		{"pinned in the global file, strict", []ssh.Signer{hostKey}, nil, []string{hostLine}, checkStrict, nil, false},
		{"pinned in the global file, accept-new", []ssh.Signer{hostKey}, nil, []string{hostLine}, checkAcceptNew, nil, false},
		{"pinned in the global file, another key in the user's", []ssh.Signer{hostKey}, []string{otherLine}, []string{hostLine}, checkStrict, nil, false},
		{"pinned in the user's file, another key in the global one", []ssh.Signer{hostKey}, []string{hostLine}, []string{otherLine}, checkStrict, nil, false},
		{"changed in the global file, strict", []ssh.Signer{hostKey}, nil, []string{"# fleet", otherLine}, checkStrict,
			[]string{"host key mismatch", "GLOBAL:2 has ssh-ed25519 " + fp(otherKey), "offered ssh-ed25519 " + fp(hostKey), "man-in-the-middle", "administrator", "GLOBAL (global_known_hosts"}, false},
		{"changed in the global file, accept-new", []ssh.Signer{hostKey}, nil, []string{otherLine}, checkAcceptNew,
			[]string{"host key mismatch", "GLOBAL:1 has ssh-ed25519 " + fp(otherKey), "man-in-the-middle"}, false},
		{"changed in the global file, accept-new, user's file without the host", []ssh.Signer{hostKey}, []string{"# mine"}, []string{otherLine}, checkAcceptNew,
			[]string{"host key mismatch", "GLOBAL:1 has"}, false},
		{"revoked in the global file, strict", []ssh.Signer{hostKey}, []string{hostLine}, []string{revokedLine}, checkStrict,
			[]string{"is revoked", "GLOBAL:1 marks ssh-ed25519 " + fp(hostKey)}, false},
		{"revoked in the global file, accept-new", []ssh.Signer{hostKey}, nil, []string{revokedLine}, checkAcceptNew,
			[]string{"is revoked", "GLOBAL:1"}, false},
		{"revoked CA in the global file", []ssh.Signer{hostKey, certByCA}, []string{caLine}, []string{revokedLine, "@revoked * " + authorized(ca.PublicKey())}, checkStrict,
			[]string{"revoked"}, false},
		{"CA in the global file, certificate by it", []ssh.Signer{hostKey, certByCA}, nil, []string{caLine}, checkStrict, nil, false},
		{"CA in the global file, server without certificate, accept-new", []ssh.Signer{hostKey}, nil, []string{caLine}, checkAcceptNew, nil, true},
		{"changed key type in the global file", []ssh.Signer{hostKey}, nil, []string{"[127.0.0.1]:%d " + authorized(ecdsaKey(t))}, checkAcceptNew,
			[]string{"host key mismatch", "GLOBAL has only ecdsa-sha2-nistp256", "offers none of those"}, false},
		{"unknown, strict", []ssh.Signer{hostKey}, nil, []string{"[127.0.0.2]:%d " + authorized(otherKey.PublicKey())}, checkStrict,
			[]string{"is unknown", " and GLOBAL have no entry for it", "ssh-keyscan -p"}, false},
		{"global file missing, strict", []ssh.Signer{hostKey}, []string{hostLine}, []string{missing}, checkStrict, nil, false},
		{"global file missing, accept-new", []ssh.Signer{hostKey}, nil, []string{missing}, checkAcceptNew, nil, true},
		{"global file without the host, accept-new", []ssh.Signer{hostKey}, nil, []string{"[127.0.0.2]:%d " + authorized(otherKey.PublicKey())}, checkAcceptNew, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := hostKeyServer(t, tt.keys...)
			user := filepath.Join(t.TempDir(), "known_hosts")
			if tt.user != nil {
				user = knownHostsFile(t, port, tt.user...)
			}
			global := filepath.Join(t.TempDir(), "ssh_known_hosts")
			if tt.global[0] != missing {
				global = knownHostsFile(t, port, tt.global...)
			}
			userBefore, globalBefore := readOrEmpty(t, user), readOrEmpty(t, global)

			err := dialFields(t, map[string]any{"port": port, "known_hosts": user, "global_known_hosts": global, "host_key_check": tt.mode})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("dial succeeded")
				}
				for _, w := range tt.want {
					if w = strings.ReplaceAll(w, "GLOBAL", global); !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
			}

			// accept-new writes only the user's file, and only for a host
			// that no file knows.
			wantUser := userBefore
			if tt.recorded {
				wantUser += knownhosts.Line([]string{fmt.Sprintf("127.0.0.1:%d", port)}, hostKey.PublicKey()) + "\n"
			}
			if got := readOrEmpty(t, user); got != wantUser {
				t.Errorf("known_hosts = %q, want %q", got, wantUser)
			}
			if got := readOrEmpty(t, global); got != globalBefore {
				t.Errorf("the global file was written: %q, was %q", got, globalBefore)
			}
			if tt.user == nil && !tt.recorded {
				if _, err := os.Stat(user); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("known_hosts was created: %v", err)
				}
			}
		})
	}
}

// The jump host's key is checked against the global files too, which it
// takes from the target unless it names its own.
func TestGlobalKnownHostsJump(t *testing.T) {
	target, jumpKey, otherKey := newSigner(t), newSigner(t), newSigner(t)
	// The jump host takes no channel: a dial that passes its host key
	// check fails at the tunnel instead.
	jumpPort := hostKeyServer(t, jumpKey)
	targetPort := hostKeyServer(t, target)
	pinned := knownHostsFile(t, jumpPort, "[127.0.0.1]:%d "+authorized(jumpKey.PublicKey()))
	changed := knownHostsFile(t, jumpPort, "[127.0.0.1]:%d "+authorized(otherKey.PublicKey()))
	for _, tt := range []struct {
		name   string
		global string // the target's global_known_hosts
		jump   map[string]any
		want   string
	}{
		{"pinned, inherited", pinned, nil, "cannot reach"},
		{"changed, inherited", changed, nil, "jump host ssh: host key mismatch"},
		{"pinned, its own", changed, map[string]any{"global_known_hosts": pinned}, "cannot reach"},
		{"changed, its own", pinned, map[string]any{"global_known_hosts": []string{changed}}, "jump host ssh: host key mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			user := filepath.Join(t.TempDir(), "known_hosts")
			jump := map[string]any{"host": "127.0.0.1", "port": jumpPort, "user": "test", "password_env": "PW"}
			maps.Copy(jump, tt.jump)
			err := dialFields(t, map[string]any{"port": targetPort, "known_hosts": user, "global_known_hosts": tt.global,
				"host_key_check": checkAcceptNew, "jump": jump})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("dial: %v, want an error mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(user); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("known_hosts was written for the jump host: %v", err)
			}
		})
	}
}

// A global file that is missing is no error, as in OpenSSH; under
// accept-new, one that cannot be read, or is not a regular file, is:
// unread, it could not stop accept-new from recording a key it pins
// otherwise.
func TestGlobalKnownHostsFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(dir, "garbled")
	if err := os.WriteFile(garbled, []byte("# ok\nhost ssh-ed25519 !!!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable")
	if err := os.WriteFile(unreadable, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	env := New(nil)
	env.dialer.getenv = func(string) string { return "pw" }
	t.Cleanup(env.Close)
	validate := func(global any) error {
		raw, _ := json.Marshal(map[string]any{"host": "h", "user": "u", "password_env": "PW",
			"known_hosts": filepath.Join(dir, "known_hosts"), "global_known_hosts": global, "host_key_check": checkAcceptNew})
		return env.ValidateConfig(context.Background(), EnvironmentType, raw)
	}
	tests := []struct {
		name   string
		global any
		want   string // "": valid
	}{
		{"missing", filepath.Join(dir, "nope"), ""},
		{"missing among others", []string{filepath.Join(dir, "nope"), filepath.Join(dir, "nope2")}, ""},
		{"none", "", ""},
		{"a FIFO", fifo, "global_known_hosts " + fifo + " is not a regular file"},
		{"a device", []string{filepath.Join(dir, "nope"), "/dev/zero"}, "global_known_hosts /dev/zero is not a regular file"},
		{"not parseable", garbled, "global_known_hosts " + garbled + ": knownhosts: " + garbled + ": no valid entries, line 2"},
	}
	if os.Geteuid() != 0 { // root reads it anyway
		tests = append(tests, struct {
			name   string
			global any
			want   string
		}{"unreadable", unreadable, "global_known_hosts: open " + unreadable + ": permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(tt.global)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateConfig: %v", err)
				}
				return
			}
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ValidateConfig: %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestParseConfigGlobalKnownHosts(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	tests := []struct {
		name       string
		config     string
		target     []string
		jump       []string // nil: no jump host
		wantErrMsg string
	}{
		{"default", `{"host": "h"}`, defaultGlobalKnownHosts, nil, ""},
		{"one path", `{"host": "h", "global_known_hosts": "/etc/fleet/known_hosts"}`, []string{"/etc/fleet/known_hosts"}, nil, ""},
		{"paths", `{"host": "h", "global_known_hosts": ["/a", "~/b", "/a/../a"]}`, []string{"/a", filepath.Join(home, "b")}, nil, ""},
		{"none as empty string", `{"host": "h", "global_known_hosts": ""}`, []string{}, nil, ""},
		{"none as empty array", `{"host": "h", "global_known_hosts": []}`, []string{}, nil, ""},
		{"null is the default", `{"host": "h", "global_known_hosts": null}`, defaultGlobalKnownHosts, nil, ""},
		{"jump inherits", `{"host": "h", "global_known_hosts": "/g", "jump": "b"}`, []string{"/g"}, []string{"/g"}, ""},
		{"jump inherits none", `{"host": "h", "global_known_hosts": [], "jump": {"host": "b"}}`, []string{}, []string{}, ""},
		{"jump its own", `{"host": "h", "jump": {"host": "b", "global_known_hosts": "/j"}}`, defaultGlobalKnownHosts, []string{"/j"}, ""},
		{"jump none of its own", `{"host": "h", "global_known_hosts": "/g", "jump": {"host": "b", "global_known_hosts": ""}}`, []string{"/g"}, []string{}, ""},
		{"relative", `{"host": "h", "global_known_hosts": "ssh_known_hosts"}`, nil, nil, `global_known_hosts: "ssh_known_hosts" is not an absolute path`},
		{"OpenSSH's none", `{"host": "h", "global_known_hosts": "none"}`, nil, nil, `global_known_hosts: "none" is not an absolute path`},
		{"relative in the list", `{"host": "h", "global_known_hosts": ["/a", "b"]}`, nil, nil, `global_known_hosts: "b" is not an absolute path`},
		{"empty in the list", `{"host": "h", "global_known_hosts": ["/a", ""]}`, nil, nil, "global_known_hosts: an empty path in the list"},
		{"number", `{"host": "h", "global_known_hosts": 1}`, nil, nil, "global_known_hosts: want a path, an array of paths"},
		{"numbers", `{"host": "h", "global_known_hosts": [1]}`, nil, nil, "global_known_hosts: want a path"},
		{"object", `{"host": "h", "global_known_hosts": {"path": "/a"}}`, nil, nil, "global_known_hosts: want a path"},
		{"NUL", `{"host": "h", "global_known_hosts": "/a\u0000"}`, nil, nil, "global_known_hosts: path contains NUL"},
		{"jump relative", `{"host": "h", "jump": {"host": "b", "global_known_hosts": "x"}}`, nil, nil, `jump.global_known_hosts: "x" is not an absolute path`},
		{"jump number", `{"host": "h", "jump": {"host": "b", "global_known_hosts": true}}`, nil, nil, "jump.global_known_hosts: want a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(json.RawMessage(tt.config))
			if tt.wantErrMsg != "" {
				if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErrMsg) {
					t.Errorf("parseConfig: %v, want ErrInvalidConfig mentioning %q", err, tt.wantErrMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalPaths(c.Target.GlobalKnownHosts, tt.target) {
				t.Errorf("global_known_hosts = %#v, want %#v", c.Target.GlobalKnownHosts, tt.target)
			}
			if tt.jump != nil && (c.Jump == nil || !equalPaths(c.Jump.GlobalKnownHosts, tt.jump)) {
				t.Errorf("jump = %+v, want global_known_hosts %#v", c.Jump, tt.jump)
			}
			// None and the default differ in the pool's key.
			if len(tt.target) == 0 {
				def, _ := parseConfig(json.RawMessage(`{"host": "h"}`))
				if c.hash() == def.hash() {
					t.Error("no global file hashes as the default")
				}
			}
		})
	}
}

// equalPaths compares a resolved list with want; none is an empty list,
// not nil.
func equalPaths(got pathList, want []string) bool {
	return got != nil && slices.Equal(got, want)
}

// ecdsaKey returns a fresh ECDSA P-256 public key.
func ecdsaKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// readOrEmpty returns the file at path, or "" when there is none.
func readOrEmpty(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// Under strict, a global file the plugin may not read is skipped, as
// OpenSSH skips it: unread, it can only make the check fail. It made
// every environment fail when a machine's administrator kept it from the
// plugin's user. accept-new still refuses it.
func TestGlobalKnownHostsUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	hostKey := newSigner(t)
	port := hostKeyServer(t, hostKey)
	user := knownHostsFile(t, port, "[127.0.0.1]:%d "+authorized(hostKey.PublicKey()))
	global := filepath.Join(t.TempDir(), "ssh_known_hosts")
	if err := os.WriteFile(global, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	fields := map[string]any{"port": port, "known_hosts": user, "global_known_hosts": global}
	if err := dialFields(t, fields); err != nil {
		t.Fatalf("strict, an unreadable global file: %v, want it skipped", err)
	}
	fields["host_key_check"] = checkAcceptNew
	if err := dialFields(t, fields); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("accept-new, an unreadable global file: %v, want it refused", err)
	}
}

// A global file may be up to 64 MiB (one that lists a fleet's keys is
// large); the endpoint's own known_hosts stays bounded by 4 MiB.
func TestGlobalKnownHostsSize(t *testing.T) {
	hostKey := newSigner(t)
	port := hostKeyServer(t, hostKey)
	padding := strings.Repeat("# "+strings.Repeat("x", 1021)+"\n", 5<<10) // 5 MiB
	big := knownHostsFile(t, port, padding+"[127.0.0.1]:%d "+authorized(hostKey.PublicKey()))
	if err := dialFields(t, map[string]any{"port": port, "known_hosts": filepath.Join(t.TempDir(), "known_hosts"), "global_known_hosts": big}); err != nil {
		t.Fatalf("a 5 MiB global file: %v", err)
	}
	if err := dialFields(t, map[string]any{"port": port, "known_hosts": big, "global_known_hosts": ""}); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Fatalf("a 5 MiB known_hosts: %v, want it refused", err)
	}
	huge := filepath.Join(t.TempDir(), "ssh_known_hosts")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, maxGlobalKnownHosts+1); err != nil {
		t.Fatal(err)
	}
	if err := dialFields(t, map[string]any{"port": port, "known_hosts": filepath.Join(t.TempDir(), "known_hosts"), "global_known_hosts": huge}); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("a global file over 64 MiB: %v, want it refused", err)
	}
}
