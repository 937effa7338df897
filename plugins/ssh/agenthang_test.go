package main

import (
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
)

// TestHungAgentDoesNotHoldTheDial: an SSH agent that takes connections and
// never answers (a stalled forwarded agent, one waiting for a
// confirmation) holds a dial no longer than its connect_timeout; closing
// the server's connection, as the timeout does, did not end the wait for
// the agent, and every later session of the environment waited on it.
func TestHungAgentDoesNotHoldTheDial(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // answers nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})

	// A server that wants a key (so the agent is asked) or the password.
	port := authServer(t)
	raw, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": port, "user": "test", "agent": true,
		"password_env": "PW", "known_hosts": filepath.Join(t.TempDir(), "known_hosts"), "host_key_check": "accept-new",
		"connect_timeout": "1s"})
	cfg, err := parseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{agentSockEnv: sock, "PW": "pw"}
	logger := hclog.NewNullLogger()
	d := &dialer{logger: logger, hostKeys: newHostKeys(logger), getenv: func(k string) string { return env[k] }}
	done := make(chan error, 1)
	go func() {
		l, err := d.dial(testContext(t), cfg)
		if err == nil {
			l.close()
		}
		done <- err
	}()
	// It times out, or gets in with the password once the agent's time is
	// up: either way, in about the connect_timeout.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the dial waited on the agent past its connect_timeout")
	}
}

// authServer serves SSH on a loopback port that refuses every public key
// and takes the password "pw", and returns the port.
func authServer(t *testing.T) int {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("no keys here")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == "pw" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(newSigner(t))
	return serveSSH(t, cfg)
}
