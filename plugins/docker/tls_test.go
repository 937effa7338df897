package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

// testCA is a certificate authority for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ptyhost test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate signed by the CA, for 127.0.0.1, and its
// key, as PEM.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// certDir returns a directory such as DOCKER_CERT_PATH names: ca.pem, and
// a client certificate the CA signed, cert.pem and key.pem.
func certDir(t *testing.T, ca *testCA) string {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageClientAuth)
	for name, b := range map[string][]byte{"ca.pem": ca.pem, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startTLSDaemon serves a fake daemon over TLS with cert, which asks for
// a client certificate signed by clientCA when that is not nil (as a
// daemon run with --tlsverify does). It returns the daemon and its
// address, tcp://….
func startTLSDaemon(t *testing.T, cert *tls.Certificate, clientCA *testCA) (*fakeDaemon, string) {
	t.Helper()
	fd := newFakeDaemon()
	srv := httptest.NewUnstartedServer(fd.handler())
	srv.Config.ConnState = fd.connState
	// The impostor's failed handshakes are the test's point, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{}
	if cert != nil {
		srv.TLS.Certificates = []tls.Certificate{*cert}
	}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(func() {
		fd.mu.Lock()
		for _, c := range fd.hijacked {
			c.Close()
		}
		fd.mu.Unlock()
		srv.Close()
	})
	fd.addContainer(&fakeContainer{ID: "dev-id", Name: "dev", Running: true})
	return fd, "tcp://" + srv.Listener.Addr().String()
}

// A tcp:// daemon is reached over TLS that verifies its certificate
// against DOCKER_CERT_PATH's ca.pem, with the plugin's client certificate;
// an impostor whose certificate that CA did not sign is refused, for
// requests and hijacked streams alike. The probe client still opens a
// connection per request, and the API client reuses one.
func TestTCPDaemonTLS(t *testing.T) {
	ca := newTestCA(t)
	t.Setenv(envCertPath, certDir(t, ca))
	t.Setenv(envTLSVerify, "1")
	t.Setenv(client.EnvOverrideHost, "")

	serverCert, serverKey := ca.issue(t, x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 30*time.Second)

	t.Run("signed by the CA", func(t *testing.T) {
		fd, host := startTLSDaemon(t, &pair, ca)
		var ds daemons
		defer ds.close()
		d, err := ds.get(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		before := fd.connections()
		for range 3 {
			if err := d.alive(ctx); err != nil {
				t.Fatalf("probe: %v", err)
			}
		}
		if n := fd.connections() - before; n != 3 {
			t.Errorf("3 probes opened %d connection(s), want 3: the probe must not reuse one", n)
		}
		before = fd.connections()
		for range 3 {
			if err := d.ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
		}
		if n := fd.connections() - before; n > 1 {
			t.Errorf("3 pings of the API client opened %d connections, want it to keep one", n)
		}
		// A hijacked stream (attach, exec) is dialed apart from the
		// transport: it goes through the same TLS.
		created, err := d.api.ExecCreate(ctx, "dev", client.ExecCreateOptions{Cmd: []string{"/bin/sh"}, TTY: true})
		if err != nil {
			t.Fatal(err)
		}
		att, err := d.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: true})
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		att.Close()
	})

	t.Run("impostor", func(t *testing.T) {
		// httptest's own certificate, for 127.0.0.1 but self-signed.
		fd, host := startTLSDaemon(t, nil, nil)
		var ds daemons
		defer ds.close()
		d, err := ds.get(host)
		if err != nil {
			t.Fatal(err)
		}
		var unknown x509.UnknownAuthorityError
		if err := d.ping(ctx); !errors.Is(err, shared.ErrUnavailable) || !errors.As(err, &unknown) {
			t.Errorf("ping of an impostor = %v, want ErrUnavailable for a certificate of an unknown authority", err)
		}
		if err := d.alive(ctx); !errors.As(err, &unknown) {
			t.Errorf("probe of an impostor = %v, want a certificate of an unknown authority", err)
		}
		if _, err := d.api.ExecAttach(ctx, "exec1", client.ExecAttachOptions{TTY: true}); !errors.As(err, &unknown) {
			t.Errorf("attach to an impostor = %v, want a certificate of an unknown authority", err)
		}
		if s := fd.signalsSent(); len(s) != 0 {
			t.Errorf("the impostor got requests through: %q", s)
		}
	})
}

// A configuration that would not verify the daemon is refused, naming the
// variable to set: DOCKER_CERT_PATH (with every file) without
// DOCKER_TLS_VERIFY, for a config's host and DOCKER_HOST alike; and so is
// plain http.
func TestTCPDaemonNeedsVerification(t *testing.T) {
	t.Setenv(envCertPath, certDir(t, newTestCA(t)))
	t.Setenv(envTLSVerify, "")
	tests := []struct {
		name, host, env, want string
	}{
		{"config's host", "tcp://127.0.0.1:2376", "", envTLSVerify + "=1"},
		{"DOCKER_HOST", "", "tcp://127.0.0.1:2376", envTLSVerify + "=1"},
		{"DOCKER_HOST plain http", "", "http://127.0.0.1:2375", "not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(client.EnvOverrideHost, tt.env)
			c, err := newClient(tt.host, true)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newClient(%q) with DOCKER_HOST=%q = %v, want ErrInvalidConfig saying %q", tt.host, tt.env, err, tt.want)
			}
		})
	}
}
