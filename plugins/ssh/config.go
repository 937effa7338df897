package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// Defaults of the config's optional fields.
const (
	defaultPort              = 22
	defaultKnownHosts        = "~/.ssh/known_hosts"
	defaultConnectTimeout    = 10 * time.Second
	defaultKeepaliveInterval = 15 * time.Second
	defaultKeepaliveCount    = 3
	defaultLinger            = 30 * time.Second
	// defaultMaxConnections is 8: with OpenSSH's default MaxSessions (10),
	// 80 sessions per environment, and fewer connections at once than
	// OpenSSH's default MaxStartups (10) begins to drop.
	defaultMaxConnections = 8
	maxMaxConnections     = 100

	// minKeepaliveInterval keeps a typo ("15ms") from flooding the server.
	minKeepaliveInterval = 100 * time.Millisecond
	maxTimeout           = 10 * time.Minute
)

// Host key checking modes.
const (
	checkStrict    = "strict"
	checkAcceptNew = "accept-new"
	checkOff       = "off"
)

// endpoint is how to reach and log in to one SSH server: the environment's
// host, or its jump host. In the JSON config its fields sit at the top level
// (the host) or in "jump". After parseConfig, Port, User, KnownHosts,
// GlobalKnownHosts and HostKeyCheck hold their resolved values and paths
// are absolute.
type endpoint struct {
	// Host is a host name or IP address.
	Host string `json:"host"`
	// Port is the TCP port (default 22).
	Port int `json:"port,omitempty"`
	// User is the login name (default: the user the plugin runs as).
	User string `json:"user,omitempty"`
	// IdentityFile is a private key file (absolute or ~/...).
	IdentityFile string `json:"identity_file,omitempty"`
	// PassphraseEnv names the environment variable of the plugin process
	// that holds IdentityFile's passphrase.
	PassphraseEnv string `json:"passphrase_env,omitempty"`
	// Agent says whether to use the SSH agent at SSH_AUTH_SOCK. Unset means
	// "when no other method is configured".
	Agent *bool `json:"agent,omitempty"`
	// PasswordEnv names the environment variable of the plugin process that
	// holds the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// KnownHosts is the known_hosts file (default ~/.ssh/known_hosts).
	KnownHosts string `json:"known_hosts,omitempty"`
	// GlobalKnownHosts are system-wide known_hosts files, consulted with
	// KnownHosts but never written (default defaultGlobalKnownHosts).
	GlobalKnownHosts pathList `json:"global_known_hosts"`
	// HostKeyCheck is strict (default), accept-new or off.
	HostKeyCheck string `json:"host_key_check,omitempty"`
}

// addr returns the endpoint's host:port.
func (e *endpoint) addr() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// String names the endpoint in messages: user@host:port.
func (e *endpoint) String() string {
	return e.User + "@" + e.addr()
}

// rawConfig is the JSON form of an SSH environment's config.
type rawConfig struct {
	endpoint
	ConnectTimeout    string            `json:"connect_timeout,omitempty"`
	KeepaliveInterval string            `json:"keepalive_interval,omitempty"`
	KeepaliveCount    *int              `json:"keepalive_count,omitempty"`
	Linger            string            `json:"linger,omitempty"`
	MaxConnections    *int              `json:"max_connections,omitempty"`
	Jump              json.RawMessage   `json:"jump,omitempty"`
	Env               map[string]string `json:"env,omitempty"`
	Shell             string            `json:"shell,omitempty"`
}

// config is a parsed and checked SSH environment config with every default
// applied. It holds no secrets, only the names of the variables that do.
type config struct {
	Target            endpoint          `json:"target"`
	Jump              *endpoint         `json:"jump,omitempty"`
	ConnectTimeout    time.Duration     `json:"connect_timeout"`
	KeepaliveInterval time.Duration     `json:"keepalive_interval"`
	KeepaliveCount    int               `json:"keepalive_count"`
	Linger            time.Duration     `json:"linger"`
	MaxConnections    int               `json:"max_connections"`
	Env               map[string]string `json:"env,omitempty"`
	Shell             string            `json:"shell,omitempty"`
}

// hash identifies the config's canonical form, for the connection pool: a
// changed config gets a new connection.
func (c *config) hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain data; cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// secretFields are config keys that would put a secret in the database.
var secretFields = map[string]string{
	"password":    "password_env",
	"passphrase":  "passphrase_env",
	"private_key": "identity_file",
}

// parseConfig decodes and checks a config, applying defaults. It touches no
// file and reads no secret; checkAuth does that. Errors wrap
// shared.ErrInvalidConfig.
func parseConfig(raw json.RawMessage) (*config, error) {
	cfg, err := decodeConfig(raw)
	if errors.Is(err, shared.ErrInvalidConfig) {
		return nil, err // from shared.DecodeConfig, which says so already
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", shared.ErrInvalidConfig, err)
	}
	return cfg, nil
}

func decodeConfig(raw json.RawMessage) (*config, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, errors.New("host is required")
	}
	if err := rejectSecrets(trimmed, ""); err != nil {
		return nil, err
	}
	var rc rawConfig
	if err := shared.DecodeConfig(trimmed, &rc); err != nil {
		return nil, err
	}
	cfg := &config{Env: rc.Env, Shell: rc.Shell}
	var err error
	if cfg.Target, err = resolveEndpoint(rc.endpoint, nil, ""); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout, err = parseDuration("connect_timeout", rc.ConnectTimeout, defaultConnectTimeout); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout <= 0 {
		return nil, errors.New("connect_timeout: must be positive")
	}
	if cfg.KeepaliveInterval, err = parseDuration("keepalive_interval", rc.KeepaliveInterval, defaultKeepaliveInterval); err != nil {
		return nil, err
	}
	if cfg.KeepaliveInterval != 0 && cfg.KeepaliveInterval < minKeepaliveInterval {
		return nil, fmt.Errorf("keepalive_interval: %v is below the minimum %v (\"0s\" turns keepalives off)", cfg.KeepaliveInterval, minKeepaliveInterval)
	}
	cfg.KeepaliveCount = defaultKeepaliveCount
	if rc.KeepaliveCount != nil {
		cfg.KeepaliveCount = *rc.KeepaliveCount
		if cfg.KeepaliveCount < 1 || cfg.KeepaliveCount > 1000 {
			return nil, fmt.Errorf("keepalive_count: %d is not in 1..1000", cfg.KeepaliveCount)
		}
	}
	if cfg.Linger, err = parseDuration("linger", rc.Linger, defaultLinger); err != nil {
		return nil, err
	}
	cfg.MaxConnections = defaultMaxConnections
	if rc.MaxConnections != nil {
		cfg.MaxConnections = *rc.MaxConnections
		if cfg.MaxConnections < 1 || cfg.MaxConnections > maxMaxConnections {
			return nil, fmt.Errorf("max_connections: %d is not in 1..%d", cfg.MaxConnections, maxMaxConnections)
		}
	}
	if len(bytes.TrimSpace(rc.Jump)) > 0 && string(bytes.TrimSpace(rc.Jump)) != "null" {
		jump, err := parseJump(rc.Jump, &cfg.Target)
		if err != nil {
			return nil, err
		}
		cfg.Jump = &jump
	}
	if err := shared.CheckPortableEnv(cfg.Env); err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	if cfg.Shell != "" && (strings.ContainsRune(cfg.Shell, 0) || strings.HasPrefix(cfg.Shell, "-") || strings.TrimSpace(cfg.Shell) != cfg.Shell) {
		return nil, fmt.Errorf("shell: %q is not a program name or path", cfg.Shell)
	}
	return cfg, nil
}

// rejectSecrets fails when the object b has a field that would store a
// secret, saying where the secret belongs instead.
func rejectSecrets(b []byte, prefix string) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return nil // shared.DecodeConfig reports what is wrong
	}
	for _, k := range slices.Sorted(maps.Keys(secretFields)) {
		if _, ok := fields[k]; ok {
			return fmt.Errorf("%s%s: secrets are never stored in an environment's config; put it in an environment variable of the ptyhost server and name that variable in %q", prefix, k, secretFields[k])
		}
	}
	return nil
}

// parseJump parses the jump field: a "[user@]host[:port]" string or an
// object with the endpoint fields. Fields it leaves empty, but for user and
// password_env, come from the target.
func parseJump(raw json.RawMessage, target *endpoint) (endpoint, error) {
	var ep endpoint
	trimmed := bytes.TrimSpace(raw)
	if trimmed[0] == '"' {
		var s string
		if err := json.Unmarshal(trimmed, &s); err != nil {
			return endpoint{}, fmt.Errorf("jump: %w", err)
		}
		var err error
		if ep, err = parseJumpString(s); err != nil {
			return endpoint{}, fmt.Errorf("jump: %w", err)
		}
	} else {
		if err := rejectSecrets(trimmed, "jump."); err != nil {
			return endpoint{}, err
		}
		if err := shared.DecodeConfig(trimmed, &ep); err != nil {
			var ce *shared.ConfigError
			if errors.As(err, &ce) {
				ce.Path = strings.TrimSuffix("jump."+ce.Path, ".")
			}
			return endpoint{}, err
		}
	}
	return resolveEndpoint(ep, target, "jump.")
}

// parseJumpString parses "[user@]host[:port]", with IPv6 addresses in
// brackets when a port follows.
func parseJumpString(s string) (endpoint, error) {
	var ep endpoint
	if s == "" {
		return ep, errors.New(`want "[user@]host[:port]" or an object`)
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		ep.User, s = s[:i], s[i+1:]
		if ep.User == "" {
			return ep, errors.New("empty user before '@'")
		}
	}
	host, port, err := net.SplitHostPort(s)
	switch {
	case err == nil:
		p, perr := strconv.Atoi(port)
		if perr != nil {
			return ep, fmt.Errorf("port %q is not a number", port)
		}
		ep.Host, ep.Port = host, p
		if p == 0 {
			return ep, errors.New("port 0 is not a port")
		}
	case strings.Count(s, ":") == 1:
		return ep, fmt.Errorf("%q: %w", s, err)
	default:
		ep.Host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	return ep, nil
}

// resolveEndpoint checks ep and applies the defaults. For a jump host,
// target supplies the fields ep leaves empty (never user or password_env: a
// password goes only to the host it was configured for).
func resolveEndpoint(ep endpoint, target *endpoint, prefix string) (endpoint, error) {
	if target != nil {
		if ep.IdentityFile == "" && ep.PassphraseEnv == "" {
			ep.IdentityFile, ep.PassphraseEnv = target.IdentityFile, target.PassphraseEnv
		}
		if ep.Agent == nil {
			ep.Agent = target.Agent
		}
		if ep.KnownHosts == "" {
			ep.KnownHosts = target.KnownHosts
		}
		if ep.GlobalKnownHosts == nil {
			ep.GlobalKnownHosts = target.GlobalKnownHosts
		}
		if ep.HostKeyCheck == "" {
			ep.HostKeyCheck = target.HostKeyCheck
		}
	}
	if ep.Host == "" {
		return ep, fmt.Errorf("%shost is required", prefix)
	}
	host, ok := hostName(ep.Host)
	if !ok {
		return ep, fmt.Errorf("%shost: %q is not a host name (letters, digits, '-', '_' and dots) or an IP address (IPv6 optionally in brackets); "+
			"known_hosts patterns such as '*', '?', ',' and '!' are refused, since accept-new records the host as given", prefix, ep.Host)
	}
	ep.Host = host
	switch {
	case ep.Port == 0:
		ep.Port = defaultPort
	case ep.Port < 0 || ep.Port > 65535:
		return ep, fmt.Errorf("%sport: %d is not in 1..65535", prefix, ep.Port)
	}
	if ep.User == "" {
		name, err := currentUser()
		if err != nil {
			return ep, fmt.Errorf("%suser is required: %w", prefix, err)
		}
		ep.User = name
	}
	if strings.ContainsAny(ep.User, "\x00\r\n") {
		return ep, fmt.Errorf("%suser: %q is not a login name", prefix, ep.User)
	}
	var err error
	if ep.IdentityFile != "" {
		if ep.IdentityFile, err = expandPath(ep.IdentityFile); err != nil {
			return ep, fmt.Errorf("%sidentity_file: %w", prefix, err)
		}
	}
	if ep.PassphraseEnv != "" {
		if ep.IdentityFile == "" {
			return ep, fmt.Errorf("%spassphrase_env: needs identity_file", prefix)
		}
		if !shared.PortableEnvName(ep.PassphraseEnv) {
			return ep, fmt.Errorf("%spassphrase_env: %q is not an environment variable name", prefix, ep.PassphraseEnv)
		}
	}
	if ep.PasswordEnv != "" && !shared.PortableEnvName(ep.PasswordEnv) {
		return ep, fmt.Errorf("%spassword_env: %q is not an environment variable name", prefix, ep.PasswordEnv)
	}
	if ep.KnownHosts == "" {
		ep.KnownHosts = defaultKnownHosts
	}
	if ep.KnownHosts, err = expandPath(ep.KnownHosts); err != nil {
		return ep, fmt.Errorf("%sknown_hosts: %w", prefix, err)
	}
	if ep.GlobalKnownHosts, err = resolvePaths(prefix+"global_known_hosts", ep.GlobalKnownHosts, defaultGlobalKnownHosts); err != nil {
		return ep, err
	}
	switch ep.HostKeyCheck {
	case "":
		ep.HostKeyCheck = checkStrict
	case checkStrict, checkAcceptNew, checkOff:
	default:
		return ep, fmt.Errorf("%shost_key_check: %q is not one of strict, accept-new, off", prefix, ep.HostKeyCheck)
	}
	return ep, nil
}

// hostName checks a host field and returns it without the brackets of a
// bracketed IPv6 address, a name in lower case and an address in its
// canonical form: known_hosts is matched as OpenSSH matches it, and a host
// written in other case must not miss a pinned entry (accept-new would
// then add the key a server offers). A host is a DNS name or an IP address, nothing
// else: the host is the name accept-new writes into known_hosts, where
// "*", "a,b" or "!a" would be a pattern vouching for other hosts too, and
// a leading '-' could pass for an option.
func hostName(host string) (string, bool) {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if a, err := netip.ParseAddr(inner); ok && err == nil && a.Is6() && zoneName(a.Zone()) {
			return a.String(), true
		}
		return "", false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String(), zoneName(a.Zone())
	}
	// A fully qualified name may end in a dot.
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if !nameLabel(label) {
			return "", false
		}
	}
	return strings.ToLower(host), true
}

// nameLabel reports whether s is a label of a host name: 1 to 63 letters,
// digits, '-' and '_' ('_' is not in RFC 1123, but is in the wild), not
// starting with '-'.
func nameLabel(s string) bool {
	return s != "" && len(s) <= 63 && s[0] != '-' && !strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	})
}

// zoneName reports whether an IPv6 address's zone (netip checks the rest)
// is none or an interface name: labels as in a host name, which netip
// does not ensure.
func zoneName(zone string) bool {
	if zone == "" {
		return true
	}
	for label := range strings.SplitSeq(zone, ".") {
		if !nameLabel(label) {
			return false
		}
	}
	return true
}

// currentUser returns the name of the user the plugin runs as.
func currentUser() (string, error) {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	for _, k := range []string{"USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v, nil
		}
	}
	return "", errors.New("the plugin's own user is unknown")
}

// expandPath turns "~" and "~/..." into paths in the plugin user's home
// directory, and requires the result to be absolute.
func expandPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains NUL")
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%q: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path (or ~/...)", p)
	}
	return filepath.Clean(p), nil
}

// parseDuration parses a Go duration string; empty means def.
func parseDuration(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as \"10s\" or \"1m30s\"", field, s)
	}
	if d < 0 || d > maxTimeout {
		return 0, fmt.Errorf("%s: %v is not in 0s..%v", field, d, maxTimeout)
	}
	return d, nil
}
