package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/ptyhost/ptyhost/shared"
)

// Pull policies.
const (
	PullMissing = "missing" // pull only when the image is not present (default)
	PullNever   = "never"   // never pull; a missing image is an error
	PullAlways  = "always"  // pull before every session
)

const (
	defaultWorkdirTarget = "/workspace"
	// minMemory is the daemon's own lower limit for a memory limit.
	minMemory = 6 << 20
)

// config is a DOCKER environment's configuration (docs/environments.md):
//
//	{"image": "debian:12", "user": "1000", "env": {"EDITOR": "vi"},
//	 "mounts": [{"source": "/srv/cache", "target": "/cache", "read_only": true}],
//	 "workdir_target": "/workspace", "network": "none",
//	 "memory": "1g", "cpus": 1.5, "pull": "missing", "remove": true}
//
// Exactly one of Image and Container is required; unknown fields are an
// error. Decoded by parseConfig, which fills in the defaults.
type config struct {
	// Host is the daemon's address (unix:///path, tcp://host:port);
	// empty means DOCKER_HOST, else the default socket.
	Host string `json:"host,omitempty"`
	// Image: each session runs in a new container of this image.
	Image string `json:"image,omitempty"`
	// Container: each session is a process exec'd into this running
	// container (name or id), which ptyhost never stops or removes.
	Container string `json:"container,omitempty"`
	// Shell is the command of a session that names none. Empty means the
	// image's own command (image mode) or /bin/sh (exec mode).
	Shell string `json:"shell,omitempty"`
	// User runs the session as this user (name, uid, or uid:gid).
	User string `json:"user,omitempty"`
	// Env is added to every session's environment.
	Env map[string]string `json:"env,omitempty"`
	// Mounts are extra bind mounts (image mode).
	Mounts []mountConfig `json:"mounts,omitempty"`
	// WorkdirTarget is where the session's worktree is bind mounted and
	// run (image mode; default /workspace). In exec mode it is the working
	// directory of a session that names no worktree.
	WorkdirTarget string `json:"workdir_target,omitempty"`
	// Network is the container's network mode (none, bridge, host, a
	// network's name, or container:NAME). Empty means the daemon's
	// default.
	Network string `json:"network,omitempty"`
	// Memory limits the container's memory: bytes, or a size such as
	// "512m" or "1g" (binary units).
	Memory memorySize `json:"memory,omitempty"`
	// CPUs limits the container to this many CPUs, such as 1.5.
	CPUs cpuCount `json:"cpus,omitempty"`
	// Pull is the pull policy: missing (default), never or always.
	Pull string `json:"pull,omitempty"`
	// Remove removes the container when the session ends (default true).
	Remove *bool `json:"remove,omitempty"`
	// Privileged runs the container privileged: no capability drop, no
	// no-new-privileges. Off unless set explicitly.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd gives back these capabilities after dropping them all.
	CapAdd []string `json:"cap_add,omitempty"`
	// Init runs docker-init as the container's pid 1 (default true), so
	// the session's process gets signals and exits as it would on a
	// terminal.
	Init *bool `json:"init,omitempty"`
	// LogDriver is the container's log driver (image mode): "none" by
	// default, because the core keeps the session's scrollback itself and
	// a daemon-side copy of every byte (json-file) costs the daemon more
	// CPU than the rest of the path. Name another ("json-file", "local",
	// "journald") to keep `docker logs`; LogOptions are its options.
	LogDriver  string            `json:"log_driver,omitempty"`
	LogOptions map[string]string `json:"log_options,omitempty"`
	// Terminal is where the session's terminal is (image mode, see
	// direct.go): "direct", the plugin holds it; "daemon", the daemon's
	// TTY through its attach stream. Empty means direct where it can be,
	// else the daemon's.
	Terminal string `json:"terminal,omitempty"`
}

// DefaultLogDriver is the log driver of a container whose config names
// none.
const DefaultLogDriver = "none"

// mountConfig is one extra bind mount.
type mountConfig struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// execMode reports whether sessions exec into an existing container.
func (c config) execMode() bool { return c.Container != "" }

// remove reports whether containers are removed when sessions end.
func (c config) remove() bool { return c.Remove == nil || *c.Remove }

// init reports whether containers run docker-init as pid 1.
func (c config) init() bool { return c.Init == nil || *c.Init }

// invalid returns an error wrapping shared.ErrInvalidConfig.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", shared.ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// parseConfig decodes and checks a config and fills in the defaults. Errors
// wrap shared.ErrInvalidConfig and say which field is wrong.
func parseConfig(raw json.RawMessage) (config, error) {
	var cfg config
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return config{}, invalid(`"image" or "container" is required`)
	}
	if err := shared.DecodeConfig(trimmed, &cfg); err != nil {
		return config{}, err
	}
	if err := cfg.check(); err != nil {
		return config{}, err
	}
	if cfg.Pull == "" && !cfg.execMode() {
		cfg.Pull = PullMissing
	}
	if cfg.WorkdirTarget == "" && !cfg.execMode() {
		cfg.WorkdirTarget = defaultWorkdirTarget
	}
	if cfg.LogDriver == "" && !cfg.execMode() {
		cfg.LogDriver = DefaultLogDriver
	}
	return cfg, nil
}

// check validates every field; it does not contact the daemon.
func (c config) check() error {
	switch {
	case c.Image == "" && c.Container == "":
		return invalid(`"image" or "container" is required`)
	case c.Image != "" && c.Container != "":
		return invalid(`"image" and "container" are exclusive: name one`)
	}
	if c.Host != "" {
		if err := checkHost(c.Host); err != nil {
			return invalid("host: %v", err)
		}
	}
	if c.Image != "" {
		if _, err := reference.ParseNormalizedNamed(c.Image); err != nil {
			return invalid("image %q: %v", c.Image, err)
		}
	}
	if c.Container != "" && !containerName.MatchString(c.Container) {
		return invalid("container %q is not a container name or id", c.Container)
	}
	if c.Shell != "" && strings.TrimSpace(c.Shell) != c.Shell {
		return invalid("shell %q has surrounding spaces", c.Shell)
	}
	if strings.ContainsRune(c.Shell, 0) {
		return invalid("shell: %q is not a program name or path: it contains NUL", c.Shell)
	}
	if strings.ContainsAny(c.User, " \t\n\x00") || strings.Count(c.User, ":") > 1 {
		return invalid("user %q is not name, uid or uid:gid", c.User)
	}
	if err := shared.CheckEnv(c.Env); err != nil {
		return invalid("env: %v", err)
	}
	if err := c.checkWorkdirTarget(); err != nil {
		return err
	}
	if err := c.checkMounts(); err != nil {
		return err
	}
	if strings.ContainsAny(c.Network, " \t\n\x00") {
		return invalid("network %q is not a network name", c.Network)
	}
	switch c.Pull {
	case "", PullMissing, PullNever, PullAlways:
	default:
		return invalid("pull %q: want %q, %q or %q", c.Pull, PullMissing, PullNever, PullAlways)
	}
	for _, cp := range c.CapAdd {
		if err := checkCap(cp); err != nil {
			return invalid("cap_add: %v", err)
		}
	}
	if err := c.checkLog(); err != nil {
		return err
	}
	switch c.Terminal {
	case "", TerminalDirect, TerminalDaemon:
	default:
		return invalid("terminal %q: want %q or %q", c.Terminal, TerminalDirect, TerminalDaemon)
	}
	if c.execMode() {
		// What configures a container that exec mode does not create.
		for name, set := range map[string]bool{
			"mounts": len(c.Mounts) > 0, "network": c.Network != "", "memory": c.Memory != 0,
			"cpus": c.CPUs != 0, "pull": c.Pull != "", "remove": c.Remove != nil,
			"privileged": c.Privileged, "cap_add": len(c.CapAdd) > 0, "init": c.Init != nil,
			"log_driver": c.LogDriver != "", "log_options": len(c.LogOptions) > 0,
			"terminal": c.Terminal != "",
		} {
			if set {
				return invalid("%s does not apply to exec mode (\"container\"): the container exists already", name)
			}
		}
	}
	return nil
}

// logDriverName is what a log driver's name may be: the daemon's own
// drivers and plugins' names ("vendor/driver:tag").
var logDriverName = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*$`)

func (c config) checkLog() error {
	if c.LogDriver != "" && !logDriverName.MatchString(c.LogDriver) {
		return invalid("log_driver %q is not a log driver's name, such as none, json-file or local", c.LogDriver)
	}
	if len(c.LogOptions) > 0 && c.LogDriver == DefaultLogDriver {
		return invalid("log_options: the %q log driver takes no options; name a log_driver", DefaultLogDriver)
	}
	if len(c.LogOptions) > 0 && c.LogDriver == "" && !c.execMode() {
		return invalid("log_options need a log_driver: the default, %q, takes none", DefaultLogDriver)
	}
	for k, v := range c.LogOptions {
		if k == "" || strings.ContainsAny(k, "= \t\n\x00") {
			return invalid("log_options: %q is not an option name", k)
		}
		if strings.ContainsRune(v, 0) {
			return invalid("log_options: the value of %q contains NUL", k)
		}
	}
	return nil
}

func (c config) checkMounts() error {
	targets := map[string]bool{}
	if !c.execMode() {
		wt := c.WorkdirTarget
		if wt == "" {
			wt = defaultWorkdirTarget
		}
		targets[path.Clean(wt)] = true
	}
	for i, m := range c.Mounts {
		if m.Source == "" || !path.IsAbs(m.Source) {
			return invalid("mounts[%d]: source %q is not an absolute path", i, m.Source)
		}
		if strings.ContainsRune(m.Source, 0) {
			return invalid("mounts[%d]: source %q contains NUL", i, m.Source)
		}
		if err := checkMountTarget(m.Target); err != nil {
			return invalid("mounts[%d]: target: %v", i, err)
		}
		t := path.Clean(m.Target)
		if targets[t] {
			return invalid("mounts[%d]: target %q is mounted twice (the worktree goes to workdir_target)", i, m.Target)
		}
		targets[t] = true
	}
	return nil
}

var (
	// containerName matches Docker's container names and ids.
	containerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// checkWorkdirTarget checks workdir_target: in image mode the worktree is
// bind mounted there (checkMountTarget); in exec mode it is only a working
// directory, which may be any absolute path, / included.
func (c config) checkWorkdirTarget() error {
	if c.WorkdirTarget == "" {
		return nil
	}
	check := checkMountTarget
	if c.execMode() {
		check = checkContainerPath
	}
	if err := check(c.WorkdirTarget); err != nil {
		return invalid("workdir_target: %v", err)
	}
	return nil
}

// checkMountTarget rejects what a bind mount cannot cover in a container
// the plugin creates: a path that is not an absolute container path, the
// root (the image's whole filesystem), and initDir or anything under it,
// which holds the direct terminal's own mounts (direct.go).
func checkMountTarget(p string) error {
	if err := checkContainerPath(p); err != nil {
		return err
	}
	switch clean := path.Clean(p); {
	case clean == "/":
		return fmt.Errorf("%q is the container's root", p)
	case clean == initDir || strings.HasPrefix(clean, initDir+"/"):
		return fmt.Errorf("%q: %s and what is under it hold the plugin's own mounts", p, initDir)
	}
	return nil
}

// checkContainerPath rejects paths that are not absolute container paths.
func checkContainerPath(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("%q contains NUL", p)
	}
	return nil
}

// checkHost accepts the daemon addresses the plugin can use safely: a
// unix socket, or tcp:// when the plugin's environment configures TLS
// that verifies the daemon (checkTLSEnv). Plain tcp://, http:// and
// https:// without client certificates would hand anyone who can reach the
// port, or sit on the path, the daemon: root on its machine. Other schemes
// (npipe, ssh, fd) the plugin's client cannot dial on Linux.
func checkHost(h string) error {
	scheme, addr, ok := strings.Cut(h, "://")
	if !ok || addr == "" {
		return fmt.Errorf("%q is not an address such as unix:///var/run/docker.sock or tcp://host:2376", h)
	}
	switch scheme {
	case "unix":
		if !path.IsAbs(addr) {
			return fmt.Errorf("%q: the socket must be an absolute path, as in unix:///var/run/docker.sock", h)
		}
		return nil
	case "tcp":
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%q: want tcp://host:port: %v", h, err)
		}
		if err := checkTLSEnv(); err != nil {
			return fmt.Errorf("%q: %w", h, err)
		}
		return nil
	case "http", "https":
		return fmt.Errorf("%q: scheme %s is not accepted: use unix:///path/docker.sock, or tcp://host:port with TLS (%s, %s)", h, scheme, envCertPath, envTLSVerify)
	}
	return fmt.Errorf("%q: unsupported scheme %q: use unix:///path/docker.sock, or tcp://host:port with TLS (%s, %s)", h, scheme, envCertPath, envTLSVerify)
}

// checkTLSEnv fails unless the plugin's environment configures TLS to a
// tcp:// daemon that verifies the daemon's certificate. The docker CLI,
// and client.WithTLSClientConfigFromEnv, read DOCKER_CERT_PATH without
// DOCKER_TLS_VERIFY as "TLS, but accept any certificate": then anyone on
// the path can pose as the daemon and receive every session's input. The
// plugin refuses that rather than quietly reading it otherwise, so that the
// variables mean for the server what they mean for the docker CLI.
func checkTLSEnv() error {
	if os.Getenv(envCertPath) == "" {
		return fmt.Errorf("tcp:// needs TLS: set %s (a directory holding ca.pem, cert.pem and key.pem) and %s=1 in the plugin's environment, or use a unix:// socket", envCertPath, envTLSVerify)
	}
	if os.Getenv(envTLSVerify) == "" {
		return fmt.Errorf("tcp:// needs the daemon's certificate verified: set %s=1 in the plugin's environment (%s alone would accept any certificate, so anyone on the path could pose as the daemon)", envTLSVerify, envCertPath)
	}
	return nil
}

// The variables that configure the client's TLS, as the docker CLI reads
// them. The plugin reads them itself (daemonTLS), always verifying.
const (
	envCertPath  = "DOCKER_CERT_PATH"
	envTLSVerify = "DOCKER_TLS_VERIFY"
)

// capabilities are the Linux capability names (capabilities(7)), without
// CAP_, up to CAP_CHECKPOINT_RESTORE (Linux 5.9).
var capabilities = map[string]bool{
	"CHOWN": true, "DAC_OVERRIDE": true, "DAC_READ_SEARCH": true, "FOWNER": true, "FSETID": true,
	"KILL": true, "SETGID": true, "SETUID": true, "SETPCAP": true, "LINUX_IMMUTABLE": true,
	"NET_BIND_SERVICE": true, "NET_BROADCAST": true, "NET_ADMIN": true, "NET_RAW": true,
	"IPC_LOCK": true, "IPC_OWNER": true, "SYS_MODULE": true, "SYS_RAWIO": true, "SYS_CHROOT": true,
	"SYS_PTRACE": true, "SYS_PACCT": true, "SYS_ADMIN": true, "SYS_BOOT": true, "SYS_NICE": true,
	"SYS_RESOURCE": true, "SYS_TIME": true, "SYS_TTY_CONFIG": true, "MKNOD": true, "LEASE": true,
	"AUDIT_WRITE": true, "AUDIT_CONTROL": true, "SETFCAP": true, "MAC_OVERRIDE": true,
	"MAC_ADMIN": true, "SYSLOG": true, "WAKE_ALARM": true, "BLOCK_SUSPEND": true, "AUDIT_READ": true,
	"PERFMON": true, "BPF": true, "CHECKPOINT_RESTORE": true,
}

// checkCap accepts a capability name as docker does: in any case, with or
// without CAP_, or ALL.
func checkCap(name string) error {
	up := strings.ToUpper(name)
	if up == "ALL" || capabilities[strings.TrimPrefix(up, "CAP_")] {
		return nil
	}
	return fmt.Errorf("%q is not a Linux capability, such as NET_BIND_SERVICE or CAP_SYS_PTRACE (see capabilities(7))", name)
}

// memorySize is a memory limit in bytes. In JSON it is a number of bytes or
// a string such as "512m", "1g", "1.5GiB" or "1048576" (units are binary:
// k = 1024).
type memorySize int64

func (m *memorySize) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		return m.set(n, string(b))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want bytes or a size such as \"512m\", got %s", b)
	}
	n, err := parseMemory(s)
	if err != nil {
		return err
	}
	return m.set(n, strconv.Quote(s))
}

func (m *memorySize) set(n int64, text string) error {
	if n < minMemory {
		return fmt.Errorf("%s is below Docker's minimum of 6m", text)
	}
	*m = memorySize(n)
	return nil
}

var memoryPattern = regexp.MustCompile(`^(?i)\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$`)

// parseMemory parses a size such as "512m", "1g", "1.5GiB" or "1048576".
func parseMemory(s string) (int64, error) {
	m := memoryPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q: want bytes or a size such as \"512m\" or \"1g\"", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[2])]
	v *= float64(uint64(1) << shift)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// cpuCount is a CPU limit in CPUs, such as 1.5. In JSON it is a number or a
// string holding one.
type cpuCount float64

// maxCPUs bounds cpus to something a machine may have; the daemon checks
// the real number.
const maxCPUs = 4096

func (c *cpuCount) UnmarshalJSON(b []byte) error {
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return fmt.Errorf("want a number such as 1.5, got %s", b)
		}
		if v, err = parseCPUs(s); err != nil {
			return err
		}
	}
	if v < 0.01 || v > maxCPUs || math.IsNaN(v) {
		return fmt.Errorf("%s: want 0.01 to %d", b, maxCPUs)
	}
	*c = cpuCount(v)
	return nil
}

// parseCPUs parses a CPU count such as "1.5".
func parseCPUs(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a number such as 1.5", s)
	}
	return v, nil
}

// nanoCPUs is the limit in the daemon's unit, 1e-9 CPUs.
func (c cpuCount) nanoCPUs() int64 { return int64(math.Round(float64(c) * 1e9)) }
