package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyError is a server host key that failed verification. Its message
// says what was expected, what was offered and what to do.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// hostKeys verifies servers' host keys against known_hosts files and, for
// accept-new, records the keys of hosts seen for the first time. It is
// shared by every connection of the plugin; mu serialises the check-then-
// append of accept-new, so two first connections record a key once.
type hostKeys struct {
	logger hclog.Logger
	probe  ssh.PublicKey // a key no file holds, to list a host's known keys

	mu sync.Mutex
}

func newHostKeys(logger hclog.Logger) *hostKeys {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return &hostKeys{logger: logger, probe: probe}
}

// hostKeyCheck is the verification of one handshake with ep.
type hostKeyCheck struct {
	hk *hostKeys
	ep *endpoint
	// algorithms lists the host key algorithms of the keys known for ep,
	// so the server offers a key the file can vouch for; nil means any.
	algorithms []string
	// called is set once the server's key has been seen.
	called bool
}

// check prepares the verification of ep's host key for one handshake.
func (h *hostKeys) check(ep *endpoint) (*hostKeyCheck, error) {
	c := &hostKeyCheck{hk: h, ep: ep}
	if ep.HostKeyCheck == checkOff {
		return c, nil
	}
	db, err := loadKnownHosts(ep.KnownHosts)
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := db(ep.addr(), probeAddr(ep), h.probe); errors.As(err, &ke) {
		seen := map[string]bool{}
		for _, k := range ke.Want {
			for _, alg := range algorithmsFor(k.Key.Type()) {
				if !seen[alg] {
					seen[alg] = true
					c.algorithms = append(c.algorithms, alg)
				}
			}
		}
	}
	return c, nil
}

// callback is the ssh.HostKeyCallback of the handshake.
func (c *hostKeyCheck) callback(hostport string, remote net.Addr, key ssh.PublicKey) error {
	c.called = true
	ep := c.ep
	if ep.HostKeyCheck == checkOff {
		c.hk.logger.Warn("host key checking is off: the connection is open to man-in-the-middle attacks",
			"host", ep.addr(), "host_key", fingerprint(key))
		return nil
	}
	err := c.hk.verify(ep, hostport, remote, key, false)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) > 0 || ep.HostKeyCheck != checkAcceptNew {
		return err
	}
	c.hk.mu.Lock()
	defer c.hk.mu.Unlock()
	// Another connection may have recorded it meanwhile.
	if err := c.hk.verify(ep, hostport, remote, key, true); !errors.As(err, &ke) || len(ke.Want) > 0 {
		return err
	}
	if err := appendKnownHost(ep.KnownHosts, knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key)); err != nil {
		return &hostKeyError{fmt.Sprintf("host key for %s is new, and recording it failed (host_key_check accept-new): %v", knownhosts.Normalize(hostport), err)}
	}
	c.hk.logger.Info("recorded the host key of a new host (host_key_check accept-new)",
		"host", knownhosts.Normalize(hostport), "host_key", fingerprint(key), "known_hosts", ep.KnownHosts)
	return nil
}

// verify checks key against ep's known_hosts file. An unknown host is
// returned as the *knownhosts.KeyError itself when raw is set or the mode
// is accept-new, so the caller can record it; every other failure is a
// *hostKeyError with the full explanation.
func (h *hostKeys) verify(ep *endpoint, hostport string, remote net.Addr, key ssh.PublicKey, raw bool) error {
	db, err := loadKnownHosts(ep.KnownHosts)
	if err != nil {
		return &hostKeyError{err.Error()}
	}
	err = db(hostport, remote, key)
	if err == nil {
		return nil
	}
	name := knownhosts.Normalize(hostport)
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		return &hostKeyError{fmt.Sprintf("host key for %s is revoked: %s:%d marks %s @revoked",
			name, revoked.Revoked.Filename, revoked.Revoked.Line, fingerprint(key))}
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return &hostKeyError{fmt.Sprintf("host key for %s: %v", name, err)}
	}
	if len(ke.Want) == 0 {
		if raw || ep.HostKeyCheck == checkAcceptNew {
			return ke
		}
		host, port, _ := net.SplitHostPort(ep.addr())
		return &hostKeyError{fmt.Sprintf("host key for %s is unknown: %s has no entry for it (host_key_check strict); the server offered %s. "+
			"Check that fingerprint with the server's administrator, then add the key with `ssh-keyscan -p %s %s >> %s`, or set host_key_check to accept-new",
			name, ep.KnownHosts, fingerprint(key), port, host, ep.KnownHosts)}
	}
	want := make([]string, len(ke.Want))
	for i, k := range ke.Want {
		want[i] = fmt.Sprintf("%s:%d has %s", k.Filename, k.Line, fingerprint(k.Key))
	}
	return &hostKeyError{fmt.Sprintf("host key mismatch for %s: %s, but the server offered %s. "+
		"Someone may be intercepting the connection (man-in-the-middle), or the host key was changed; "+
		"if you trust the new key, remove the old one with `ssh-keygen -R '%s' -f %s`",
		name, strings.Join(want, "; "), fingerprint(key), name, ep.KnownHosts)}
}

// noCommonHostKeyError explains a handshake that failed because the server
// offers none of the host key types known_hosts has for it.
func noCommonHostKeyError(ep *endpoint, algorithms []string, err error) error {
	return &hostKeyError{fmt.Sprintf("host key mismatch for %s: %s has only %s keys for it, and the server offers none of those (%v). "+
		"Someone may be intercepting the connection (man-in-the-middle), or the host keys were changed",
		knownhosts.Normalize(ep.addr()), ep.KnownHosts, strings.Join(algorithms, ", "), err)}
}

// loadKnownHosts parses a known_hosts file; a missing file knows no host.
func loadKnownHosts(path string) (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	db, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", path, err)
	}
	return db, nil
}

// appendKnownHost adds line to the file at path, creating it (0600, its
// directory 0700) if needed.
func appendKnownHost(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// Start on a line of its own even if the file lacks a final newline.
	prefix := ""
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			prefix = "\n"
		}
	}
	if _, err := f.WriteString(prefix + line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// probeAddr is a remote address for known_hosts lookups by host name.
func probeAddr(ep *endpoint) net.Addr {
	ip := net.ParseIP(ep.Host)
	if ip == nil {
		ip = net.IPv4zero
	}
	return &net.TCPAddr{IP: ip, Port: ep.Port}
}

// algorithmsFor lists the host key algorithms that present a key of type t.
func algorithmsFor(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// fingerprint formats a key as OpenSSH does: "ssh-ed25519 SHA256:…".
func fingerprint(key ssh.PublicKey) string {
	return key.Type() + " " + ssh.FingerprintSHA256(key)
}
