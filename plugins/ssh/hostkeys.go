package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// hostKeys verifies servers' host keys against known_hosts files (an
// endpoint's own and the system-wide ones, as OpenSSH reads both) and, for
// accept-new, records the keys of hosts seen for the first time in the
// endpoint's own file, never in a system-wide one. It is
// shared by every connection of the plugin; mu serialises the check-then-
// append of accept-new, so two first connections record a key once.
type hostKeys struct {
	logger hclog.Logger
	probe  ssh.PublicKey // a key no file holds, to list a host's known keys
	// unreadable holds the global files skipped as unreadable, to warn
	// once for each (load).
	unreadable sync.Map

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
	// algorithms lists the host key algorithms to ask the server for; nil
	// (any) only when checking is off. See check.
	algorithms []string
	// keyAlgorithms lists the algorithms of ep's known host keys (not
	// counting @cert-authority lines), and keyFiles the files that hold
	// them, for noCommonHostKeyError.
	keyAlgorithms []string
	keyFiles      []string
	// cas are the @cert-authority lines that cover ep: a host certificate
	// signed by one of them is checked as a certificate.
	cas []knownhosts.KnownKey
	// called is set once the server's key has been seen.
	called bool
}

// check prepares the verification of ep's host key for one handshake. It
// chooses what to ask the server for, as OpenSSH does: certificates first
// when a @cert-authority line covers ep, so a host certificate signed by
// that CA verifies; then the types of ep's known host keys, so a host with
// several keys is checked against the right one; or, when the file has no
// host key for ep, every plain type, so that a certificate from a CA the
// file does not trust is not presented in place of the key accept-new
// would record or strict would name. The files are ep's known_hosts and
// its global_known_hosts together, as one.
func (h *hostKeys) check(ep *endpoint) (*hostKeyCheck, error) {
	c := &hostKeyCheck{hk: h, ep: ep}
	if ep.HostKeyCheck == checkOff {
		return c, nil
	}
	kh, err := h.load(ep)
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if err := kh.check(ep.addr(), probeAddr(ep), h.probe); errors.As(err, &ke) {
		for _, k := range ke.Want {
			if kh.isCA(k) {
				c.cas = append(c.cas, k)
				continue
			}
			if !slices.Contains(c.keyFiles, k.Filename) {
				c.keyFiles = append(c.keyFiles, k.Filename)
			}
			for _, alg := range algorithmsFor(k.Key.Type()) {
				if !slices.Contains(c.keyAlgorithms, alg) {
					c.keyAlgorithms = append(c.keyAlgorithms, alg)
				}
			}
		}
	}
	certs, plain := hostKeyAlgorithms()
	if len(c.cas) > 0 {
		c.algorithms = certs
	}
	if len(c.keyAlgorithms) > 0 {
		plain = c.keyAlgorithms
	}
	c.algorithms = append(c.algorithms, plain...)
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
	key, err := c.verify(hostport, remote, key, false)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) > 0 || ep.HostKeyCheck != checkAcceptNew {
		return err
	}
	c.hk.mu.Lock()
	defer c.hk.mu.Unlock()
	// Another connection may have recorded it meanwhile.
	if _, err := c.verify(hostport, remote, key, true); !errors.As(err, &ke) || len(ke.Want) > 0 {
		return err
	}
	if err := appendKnownHost(ep.KnownHosts, knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key)); err != nil {
		return &hostKeyError{fmt.Sprintf("host key for %s is new, and recording it failed (host_key_check accept-new): %v", knownhosts.Normalize(hostport), err)}
	}
	c.hk.logger.Info("recorded the host key of a new host (host_key_check accept-new)",
		"host", knownhosts.Normalize(hostport), "host_key", fingerprint(key), "known_hosts", ep.KnownHosts)
	return nil
}

// verify checks key against ep's known_hosts files and returns the key it
// judged: a certificate from a CA the files trust for ep is checked as a
// certificate; from any other CA it vouches for nothing, and, as OpenSSH
// does, the server is judged by the plain key inside it (x/crypto would
// refuse it outright). An unknown host is returned as an empty
// *knownhosts.KeyError when raw is set or the mode is accept-new, so the
// caller can record the key; every other failure is a *hostKeyError with
// the full explanation. A host is unknown only when no file, global ones
// included, has a key for it: a key pinned in a global file and not
// offered is a changed key, which accept-new refuses like any other.
func (c *hostKeyCheck) verify(hostport string, remote net.Addr, key ssh.PublicKey, raw bool) (ssh.PublicKey, error) {
	ep := c.ep
	kh, err := c.hk.load(ep)
	if err != nil {
		return key, &hostKeyError{err.Error()}
	}
	name := knownhosts.Normalize(hostport)
	if cert, ok := key.(*ssh.Certificate); ok {
		// x/crypto says a certificate is revoked but not which line
		// revokes it: ask about its two keys one by one.
		for _, k := range []struct {
			what string
			key  ssh.PublicKey
		}{{"CA", cert.SignatureKey}, {"key", cert.Key}} {
			var revoked *knownhosts.RevokedError
			if errors.As(kh.check(hostport, remote, k.key), &revoked) {
				return key, &hostKeyError{fmt.Sprintf("host certificate for %s is revoked: %s:%d marks its %s %s @revoked",
					name, revoked.Revoked.Filename, revoked.Revoked.Line, k.what, fingerprint(k.key))}
			}
		}
		i := slices.IndexFunc(c.cas, func(ca knownhosts.KnownKey) bool { return keyEqual(ca.Key, cert.SignatureKey) })
		if i < 0 {
			key = cert.Key
		} else if err := kh.check(hostport, remote, cert); err != nil {
			return key, &hostKeyError{fmt.Sprintf("host certificate for %s, signed by %s (@cert-authority at %s:%d), is not valid for it: %v",
				name, fingerprint(cert.SignatureKey), c.cas[i].Filename, c.cas[i].Line, err)}
		} else {
			return key, nil
		}
	}
	err = kh.check(hostport, remote, key)
	if err == nil {
		return key, nil
	}
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		return key, &hostKeyError{fmt.Sprintf("host key for %s is revoked: %s:%d marks %s @revoked",
			name, revoked.Revoked.Filename, revoked.Revoked.Line, fingerprint(key))}
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return key, &hostKeyError{fmt.Sprintf("host key for %s: %v", name, err)}
	}
	// x/crypto lists the @cert-authority lines that cover the host among
	// its keys; they vouch for certificates only, so a plain key they do
	// not list is unknown, not changed.
	want := slices.DeleteFunc(slices.Clone(ke.Want), kh.isCA)
	if len(want) == 0 {
		if raw || ep.HostKeyCheck == checkAcceptNew {
			return key, &knownhosts.KeyError{}
		}
		known := "no entry for it"
		if len(ke.Want) > 0 {
			known = "only @cert-authority lines for it, and the server presented no certificate signed by one of them"
		}
		host, port, _ := net.SplitHostPort(ep.addr())
		return key, &hostKeyError{fmt.Sprintf("host key for %s is unknown: %s %s (host_key_check strict); the server offered %s. "+
			"Check that fingerprint with the server's administrator, then add the key with `ssh-keyscan -p %s %s >> %s`, or set host_key_check to accept-new",
			name, filesHave(kh.files()), known, fingerprint(key), port, host, ep.KnownHosts)}
	}
	lines := make([]string, len(want))
	inUser, inGlobal := false, []string(nil)
	for i, k := range want {
		lines[i] = fmt.Sprintf("%s:%d has %s", k.Filename, k.Line, fingerprint(k.Key))
		switch {
		case k.Filename == kh.user:
			inUser = true
		case !slices.Contains(inGlobal, k.Filename):
			inGlobal = append(inGlobal, k.Filename)
		}
	}
	// A key pinned in a global file is the machine's administrator's to
	// change; the plugin never writes there.
	var fixes []string
	if inUser {
		fixes = append(fixes, fmt.Sprintf("remove the old one with `ssh-keygen -R '%s' -f %s`", name, kh.user))
	}
	if len(inGlobal) > 0 {
		fixes = append(fixes, fmt.Sprintf("have the machine's administrator replace the old one in %s (global_known_hosts; ptyhost never writes there)",
			strings.Join(inGlobal, " and ")))
	}
	return key, &hostKeyError{fmt.Sprintf("host key mismatch for %s: %s, but the server offered %s. "+
		"Someone may be intercepting the connection (man-in-the-middle), or the host key was changed; "+
		"if you trust the new key, %s",
		name, strings.Join(lines, "; "), fingerprint(key), strings.Join(fixes, ", and "))}
}

// noCommonHostKeyError explains a handshake that failed because the server
// offers none of the host key types known_hosts has for it.
func (c *hostKeyCheck) noCommonHostKeyError(err error) error {
	certs := ""
	if len(c.cas) > 0 {
		certs = " (and certificates from its @cert-authority lines)"
	}
	return &hostKeyError{fmt.Sprintf("host key mismatch for %s: %s only %s keys for it%s, and the server offers none of those (%v). "+
		"Someone may be intercepting the connection (man-in-the-middle), or the host keys were changed",
		knownhosts.Normalize(c.ep.addr()), filesHave(c.keyFiles), strings.Join(c.keyAlgorithms, ", "), certs, err)}
}

// knownHostsDB is one reading of an endpoint's known_hosts files, its own
// and the global ones, as one: x/crypto's check of a host key against
// them, and which of their lines are @cert-authority lines, which
// x/crypto's KeyError lists among a host's keys without saying so.
type knownHostsDB struct {
	check  ssh.HostKeyCallback
	user   string                     // the endpoint's known_hosts, read or not
	global []string                   // the global files read: those that exist
	cas    map[fileLine]ssh.PublicKey // the CA keys, by file and line
}

// fileLine is a line of a known_hosts file.
type fileLine struct {
	path string
	line int
}

// load reads ep's known_hosts files (loadKnownHosts). Under strict, a
// global file the plugin may not read is skipped, with a warning logged
// once for its path: unread, it can only make the check fail, never pass,
// and a machine's administrator may keep one from the plugin's user.
// Under accept-new it is refused: its pinned keys, unread, could not stop
// accept-new recording another.
func (h *hostKeys) load(ep *endpoint) (*knownHostsDB, error) {
	var skip func(path string, err error)
	if ep.HostKeyCheck == checkStrict {
		skip = func(path string, err error) {
			if _, warned := h.unreadable.LoadOrStore(path, true); !warned {
				h.logger.Warn("skipping a global_known_hosts file the plugin cannot read (host_key_check strict); accept-new refuses it",
					"path", path, "error", err)
			}
		}
	}
	return loadKnownHosts(ep.KnownHosts, ep.GlobalKnownHosts, skip)
}

// loadKnownHosts parses the known_hosts file user and the global files;
// a missing file knows no host, as in OpenSSH. Any other failure to read
// one, global files included, is an error: a global file that pins a
// host's key and went unread would let accept-new record whatever key a
// server offered for it. skip, when not nil, is given instead each global
// file the plugin has no permission to read, which is then left out. A
// global file may be as large as maxGlobalKnownHosts.
func loadKnownHosts(user string, global []string, skip func(path string, err error)) (*knownHostsDB, error) {
	kh := &knownHostsDB{user: user, cas: map[fileLine]ssh.PublicKey{}}
	var files []string
	read := func(field, path string) error {
		limit := maxConfigFile
		if path != user {
			limit = maxGlobalKnownHosts
		}
		data, _, err := readBoundedFile(field, path, limit)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if errors.Is(err, fs.ErrPermission) && path != user && skip != nil {
			skip(path, err)
			return nil
		}
		if err != nil {
			return err
		}
		files = append(files, path)
		if path != user {
			kh.global = append(kh.global, path)
		}
		// Lines are numbered as knownhosts numbers them. Should the file
		// change between the two reads, isCA compares the keys too.
		for i, line := range bytes.Split(data, []byte("\n")) {
			if !bytes.Contains(line, []byte("@cert-authority")) {
				continue
			}
			if marker, _, key, _, _, err := ssh.ParseKnownHosts(line); err == nil && marker == "cert-authority" {
				kh.cas[fileLine{path, i + 1}] = key
			}
		}
		return nil
	}
	if err := read("known_hosts", user); err != nil {
		return nil, err
	}
	for _, path := range global {
		// The endpoint's own file may be listed as global too; it is
		// read once, as its own.
		if path == user {
			continue
		}
		if err := read("global_known_hosts", path); err != nil {
			return nil, err
		}
	}
	var err error
	if kh.check, err = knownhosts.New(files...); err != nil {
		// Say which field's file is wrong: knownhosts stops at the first.
		for _, path := range files {
			if _, ferr := knownhosts.New(path); ferr != nil {
				field := "global_known_hosts"
				if path == user {
					field = "known_hosts"
				}
				return nil, fmt.Errorf("%s %s: %w", field, path, ferr)
			}
		}
		return nil, fmt.Errorf("known_hosts files: %w", err)
	}
	return kh, nil
}

// files lists the files kh stands for: the endpoint's known_hosts (named
// even when it does not exist: accept-new and ssh-keyscan add to it) and
// the global files read.
func (kh *knownHostsDB) files() []string {
	return append([]string{kh.user}, kh.global...)
}

// isCA reports whether k, from a knownhosts.KeyError, is a
// @cert-authority line.
func (kh *knownHostsDB) isCA(k knownhosts.KnownKey) bool {
	ca, ok := kh.cas[fileLine{k.Filename, k.Line}]
	return ok && keyEqual(ca, k.Key)
}

// filesHave begins a sentence about files: "F has" or "F and G have".
func filesHave(files []string) string {
	if len(files) == 1 {
		return files[0] + " has"
	}
	return strings.Join(files, " and ") + " have"
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

// hostKeyAlgorithms returns the host key algorithms x/crypto offers by
// default (its supported ones and SHA-1 ssh-rsa), split into those that
// present a host certificate and those that present a plain key, each in
// OpenSSH's order of preference (Ed25519, ECDSA, RSA with SHA-2, the
// rest): the server presents, and accept-new records, the key OpenSSH
// would.
func hostKeyAlgorithms() (certs, plain []string) {
	for _, alg := range slices.Concat(ssh.SupportedAlgorithms().HostKeys, ssh.InsecureAlgorithms().HostKeys) {
		// Certificate algorithms are named "<key type>-cert-v01@<domain>"
		// (OpenSSH's PROTOCOL.certkeys; x/crypto's ML-DSA ones too).
		if strings.Contains(alg, "-cert-v01@") {
			certs = append(certs, alg)
		} else {
			plain = append(plain, alg)
		}
	}
	byPreference := func(a, b string) int { return algorithmRank(a) - algorithmRank(b) }
	slices.SortStableFunc(certs, byPreference)
	slices.SortStableFunc(plain, byPreference)
	return certs, plain
}

// algorithmRank orders host key algorithms as OpenSSH's client does.
func algorithmRank(alg string) int {
	for i, prefix := range []string{"ssh-ed25519", "ecdsa-sha2-", "rsa-sha2-512", "rsa-sha2-256"} {
		if strings.HasPrefix(alg, prefix) {
			return i
		}
	}
	return 4
}

// algorithmsFor lists the host key algorithms that present a key of type t.
func algorithmsFor(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// keyEqual reports whether a and b are the same key.
func keyEqual(a, b ssh.PublicKey) bool {
	return bytes.Equal(a.Marshal(), b.Marshal())
}

// fingerprint formats a key as OpenSSH does: "ssh-ed25519 SHA256:…".
func fingerprint(key ssh.PublicKey) string {
	return key.Type() + " " + ssh.FingerprintSHA256(key)
}
