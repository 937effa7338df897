package main

// Host key checking against in-process x/crypto servers: plain host keys,
// host certificates, @cert-authority and @revoked lines, accept-new.

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// newSigner returns a fresh ed25519 signer.
func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// hostCert returns a signer that presents host's key as a host
// certificate for 127.0.0.1, signed by ca, after edits.
func hostCert(t testing.TB, host, ca ssh.Signer, edits ...func(*ssh.Certificate)) ssh.Signer {
	t.Helper()
	cert := &ssh.Certificate{
		Key:             host.PublicKey(),
		Serial:          1,
		CertType:        ssh.HostCert,
		KeyId:           "test host",
		ValidPrincipals: []string{"127.0.0.1"},
		ValidBefore:     ssh.CertTimeInfinity,
	}
	for _, edit := range edits {
		edit(cert)
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(cert, host)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// hostKeyServer serves SSH handshakes on a loopback port, presenting the
// given host keys (plain or certificates) and asking no authentication,
// and returns the port. It opens no channel; its connections end when the
// client's do, or at the test's end.
func hostKeyServer(t *testing.T, keys ...ssh.Signer) int {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range keys {
		cfg.AddHostKey(k)
	}
	return serveSSH(t, cfg)
}

// serveSSH serves SSH handshakes with cfg on a loopback port and returns
// the port. It opens no channel; its connections end when the client's
// do, or at the test's end.
func serveSSH(t *testing.T, cfg *ssh.ServerConfig) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					nch.Reject(ssh.Prohibited, "no channels here")
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// dialHostKeys connects to the server at port as the plugin does, with the
// known_hosts file kh and host_key_check mode, and disconnects.
func dialHostKeys(t *testing.T, port int, kh, mode string) error {
	t.Helper()
	return dialFields(t, map[string]any{"port": port, "known_hosts": kh, "host_key_check": mode})
}

// dialFields connects to 127.0.0.1 as the plugin does, with the config
// fields given beside the test's host, user and password, and
// disconnects.
func dialFields(t *testing.T, fields map[string]any) error {
	t.Helper()
	c := map[string]any{"host": "127.0.0.1", "user": "test", "password_env": "PW"}
	maps.Copy(c, fields)
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.NewNullLogger()
	d := &dialer{logger: logger, hostKeys: newHostKeys(logger), getenv: func(string) string { return "pw" }}
	l, err := d.dial(testContext(t), cfg)
	if err != nil {
		return err
	}
	l.close()
	return nil
}

// knownHostsFile writes lines to a new known_hosts file; "%d" in a line
// stands for port.
func knownHostsFile(t *testing.T, port int, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	for _, l := range lines {
		if strings.Contains(l, "%d") {
			l = fmt.Sprintf(l, port)
		}
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authorized formats key as in known_hosts: "type base64".
func authorized(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func TestHostKeyCheck(t *testing.T) {
	ca, otherCA, hostKey, otherKey := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	certByCA := hostCert(t, hostKey, ca)
	certByOther := hostCert(t, hostKey, otherCA)
	expired := hostCert(t, hostKey, ca, func(c *ssh.Certificate) { c.ValidBefore = 1 })

	// The @cert-authority pattern covers every 127.0.0.x at the port, as
	// "*.corp" covers a domain's hosts.
	caLine := "@cert-authority [127.0.0.*]:%d " + authorized(ca.PublicKey())
	hostLine := "[127.0.0.1]:%d " + authorized(hostKey.PublicKey())
	otherLine := "[127.0.0.1]:%d " + authorized(otherKey.PublicKey())
	fp := func(s ssh.Signer) string { return ssh.FingerprintSHA256(s.PublicKey()) }
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaKey, err := ssh.NewPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		keys  []ssh.Signer // the server's
		lines []string     // known_hosts
		mode  string
		want  []string // parts of the error; none: it connects
		not   []string // what the error must not say
	}{
		{"CA only, certificate by it, strict", []ssh.Signer{hostKey, certByCA}, []string{caLine}, checkStrict, nil, nil},
		{"CA and host key, certificate by the CA", []ssh.Signer{hostKey, certByCA}, []string{caLine, hostLine}, checkStrict, nil, nil},
		{"host key only, server with a certificate", []ssh.Signer{hostKey, certByOther}, []string{hostLine}, checkStrict, nil, nil},
		{"CA and host key, certificate by another CA", []ssh.Signer{hostKey, certByOther}, []string{caLine, hostLine}, checkStrict, nil, nil},
		{"CA only, expired certificate by it", []ssh.Signer{hostKey, expired}, []string{caLine}, checkStrict,
			[]string{"host certificate for [127.0.0.1]:", "signed by ssh-ed25519 " + fp(ca), "cert has expired"}, nil},
		{"CA only, server without certificate, strict", []ssh.Signer{hostKey}, []string{caLine}, checkStrict,
			[]string{"is unknown", "@cert-authority", "ssh-keyscan -p", fp(hostKey)}, []string{"mismatch", fp(ca)}},
		{"CA only, certificate by another CA, strict", []ssh.Signer{hostKey, certByOther}, []string{caLine}, checkStrict,
			[]string{"is unknown", "ssh-keyscan -p", fp(hostKey)}, []string{"mismatch"}},
		{"unknown, certificate by another CA, strict", []ssh.Signer{hostKey, certByOther}, nil, checkStrict,
			[]string{"is unknown", "ssh-keyscan -p", fp(hostKey)}, []string{"authorities"}},
		{"changed key", []ssh.Signer{hostKey}, []string{otherLine}, checkStrict,
			[]string{"host key mismatch", ":1 has ssh-ed25519 " + fp(otherKey), "offered ssh-ed25519 " + fp(hostKey), "man-in-the-middle"}, nil},
		{"changed key, accept-new", []ssh.Signer{hostKey}, []string{otherLine}, checkAcceptNew,
			[]string{"host key mismatch", "man-in-the-middle"}, nil},
		{"changed key beside a CA, certificate by another CA", []ssh.Signer{hostKey, certByOther}, []string{caLine, otherLine}, checkAcceptNew,
			[]string{"host key mismatch", ":2 has ssh-ed25519 " + fp(otherKey), "offered ssh-ed25519 " + fp(hostKey), "man-in-the-middle"}, []string{fp(ca)}},
		{"changed key type", []ssh.Signer{hostKey}, []string{"[127.0.0.1]:%d " + authorized(ecdsaKey)}, checkStrict,
			[]string{"host key mismatch", "ecdsa-sha2-nistp256", "offers none of those", "man-in-the-middle"}, nil},
		{"revoked key", []ssh.Signer{hostKey}, []string{hostLine, "@revoked * " + authorized(hostKey.PublicKey())}, checkStrict,
			[]string{"is revoked", ":2 marks ssh-ed25519 " + fp(hostKey)}, nil},
		{"revoked key, accept-new", []ssh.Signer{hostKey}, []string{"@revoked * " + authorized(hostKey.PublicKey())}, checkAcceptNew,
			[]string{"is revoked"}, nil},
		{"revoked key in a certificate by the CA", []ssh.Signer{hostKey, certByCA}, []string{caLine, "@revoked * " + authorized(hostKey.PublicKey())}, checkStrict,
			[]string{"revoked"}, nil},
		{"revoked CA", []ssh.Signer{hostKey, certByCA}, []string{caLine, hostLine, "@revoked * " + authorized(ca.PublicKey())}, checkStrict,
			[]string{"revoked", fp(ca)}, nil},
		{"revoked other CA, accept-new", []ssh.Signer{hostKey, certByOther}, []string{caLine, "@revoked * " + authorized(otherCA.PublicKey())}, checkAcceptNew,
			[]string{"revoked", fp(otherCA)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := hostKeyServer(t, tt.keys...)
			kh := knownHostsFile(t, port, tt.lines...)
			err := dialHostKeys(t, port, kh, tt.mode)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("dial succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q mentions %q", err, n)
				}
			}
		})
	}
}

// accept-new records the plain key of a host it does not know, even when
// the server also has a certificate from a CA the file does not trust for
// it, and strict then accepts the host.
func TestHostKeyAcceptNew(t *testing.T) {
	ca, otherCA, hostKey := newSigner(t), newSigner(t), newSigner(t)
	certByOther := hostCert(t, hostKey, otherCA)
	caLine := "@cert-authority [127.0.0.*]:%d " + authorized(ca.PublicKey())
	tests := []struct {
		name  string
		keys  []ssh.Signer
		lines []string
	}{
		{"no file", []ssh.Signer{hostKey}, nil},
		{"certificate by an unknown CA", []ssh.Signer{hostKey, certByOther}, []string{"# no CA"}},
		{"certificate by another CA than the file's", []ssh.Signer{hostKey, certByOther}, []string{caLine}},
		{"CA only, server without certificate", []ssh.Signer{hostKey}, []string{caLine}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := hostKeyServer(t, tt.keys...)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			before := ""
			if tt.lines != nil {
				kh = knownHostsFile(t, port, tt.lines...)
				b, _ := os.ReadFile(kh)
				before = string(b)
			}
			if err := dialHostKeys(t, port, kh, checkAcceptNew); err != nil {
				t.Fatalf("accept-new: %v", err)
			}
			b, err := os.ReadFile(kh)
			if err != nil {
				t.Fatal(err)
			}
			want := before + knownhosts.Line([]string{fmt.Sprintf("127.0.0.1:%d", port)}, hostKey.PublicKey()) + "\n"
			if string(b) != want {
				t.Errorf("known_hosts = %q, want %q", b, want)
			}
			if err := dialHostKeys(t, port, kh, checkStrict); err != nil {
				t.Errorf("strict after accept-new: %v", err)
			}
		})
	}
}

// A known_hosts that is a FIFO or a device is refused at once: reading a
// FIFO waited for a writer, and /dev/zero had no end.
func TestKnownHostsNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, err := loadKnownHosts(path, nil, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "known_hosts "+path+" is not a regular file") {
				t.Errorf("loadKnownHosts(%s): %v, want it refused", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("loadKnownHosts(%s) did not return", path)
		}
	}
}

// TestHostPatternWithoutPort pins what docs/environments.md says of
// patterns and ports: on a port other than 22 (the test server's), a bare
// "*" covers nothing, and "[*]:PORT" covers the host, for plain keys and
// for an @cert-authority line alike.
func TestHostPatternWithoutPort(t *testing.T) {
	ca, hostKey := newSigner(t), newSigner(t)
	plain := hostKeyServer(t, hostKey)
	certified := hostKeyServer(t, hostKey, hostCert(t, hostKey, ca))
	for _, tt := range []struct {
		port  int
		line  string
		known bool
	}{
		{plain, "* " + authorized(hostKey.PublicKey()), false},
		{plain, "[*]:%d " + authorized(hostKey.PublicKey()), true},
		{certified, "@cert-authority * " + authorized(ca.PublicKey()), false},
		{certified, "@cert-authority [*]:%d " + authorized(ca.PublicKey()), true},
	} {
		err := dialHostKeys(t, tt.port, knownHostsFile(t, tt.port, tt.line), checkStrict)
		switch {
		case tt.known && err != nil:
			t.Errorf("%q: %v, want the host known", tt.line, err)
		case !tt.known && (err == nil || !strings.Contains(err.Error(), "is unknown")):
			t.Errorf("%q: %v, want the host unknown", tt.line, err)
		}
	}
}
