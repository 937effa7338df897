package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/webui"
	"github.com/ptyhost/ptyhost/shared"
)

// serve's flags and settings: parsing, checking and the value types.

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// byteSize parses sizes such as 262144, 256KiB, 4MiB or 1GiB (K, M and G
// are the same binary units).
type byteSize int

func (b *byteSize) String() string { return strconv.Itoa(int(*b)) }

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if errors.Is(err, strconv.ErrRange) || err == nil && n > math.MaxInt/mult {
		// Multiplied, it would wrap around to another size, even a
		// negative one, and start the server with it.
		return fmt.Errorf("too large: want a size such as 262144, 256KiB, 4MiB or 1GiB")
	}
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive size such as 262144, 256KiB, 4MiB or 1GiB")
	}
	*b = byteSize(n * mult)
	return nil
}

// scrollbackSize is --scrollback: a byteSize of at least
// minScrollbackBytes, as core.Options requires, and at most
// core.MaxScrollbackBytes, the most a plugin keeps; a server given more
// would start, and then fail every create.
type scrollbackSize byteSize

// minScrollbackBytes is the least core.Options.ScrollbackBytes.
const minScrollbackBytes = 4 << 10

func (b *scrollbackSize) String() string { return (*byteSize)(b).String() }

func (b *scrollbackSize) Set(v string) error {
	var n byteSize
	if err := n.Set(v); err != nil {
		return err
	}
	if n < minScrollbackBytes {
		return fmt.Errorf("%s is too small: want at least %s, such as 256KiB", humanBytes(int(n)), humanBytes(minScrollbackBytes))
	}
	if n > core.MaxScrollbackBytes {
		return fmt.Errorf("%s is too large: want at most %s, the most a plugin keeps per session", humanBytes(int(n)), humanBytes(core.MaxScrollbackBytes))
	}
	*b = scrollbackSize(n)
	return nil
}

const serveUsage = `Usage: ptyhost serve [flags]

Runs the ptyhost server: the REST API and WebSocket attach endpoint, with the
environment plugins of the plugin directory: the built-in ones (host, docker,
ssh) and the third-party ones named in the configuration file's plugin
blocks. Most flags can also be set with the environment variable named in
brackets and in the configuration file (--config): a flag wins over its
variable, which wins over the file.
`

// newServeFlagSet returns serve's flags, writing into c, with their
// defaults: neither the environment nor a configuration file applies yet.
// The flag package prints nothing: parseServeFlags prints --help (with
// printHelp, as every command does) and reports errors once.
func newServeFlagSet(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.configPath, "config", "", "server configuration `FILE` (HCL, at most 1 MiB); flags and PTYHOST_* variables override it [PTYHOST_CONFIG]")
	fs.StringVar(&c.listen, "listen", DefaultListen, "`ADDRESS` (host:port) to listen on [PTYHOST_LISTEN]")
	fs.StringVar(&c.db, "db", "", "database `DSN`: sqlite:PATH or postgres://... (default sqlite:DATA_DIR/ptyhost.db) [PTYHOST_DB]")
	fs.StringVar(&c.dataDir, "data-dir", defaultDataDir(), "`DIR` for the embedded database, the plugins' sockets (run/) and the recordings (recordings/) [PTYHOST_DATA_DIR]")
	fs.StringVar(&c.pluginDir, "plugin-dir", defaultPluginDir(), "`DIR` of ptyhost-plugin-* binaries [PTYHOST_PLUGIN_DIR]")
	fs.StringVar(&c.token, "token", "", "require this bearer `TOKEN` (16 bytes or more) on every API request; prefer the variable or the configuration file, as a flag shows in the process list [PTYHOST_TOKEN]")
	boolFlag(fs, &c.insecure, "insecure", false, "allow listening beyond loopback without a token")
	fs.Var(&c.allowedOrigins, "allowed-origin", "extra browser origin allowed to call the API and attach: a host[:port] `PATTERN` such as app.example.com or *.example.com, or scheme://host[:port] for that scheme only (repeatable)")
	fs.Var(&c.allowedHosts, "allowed-host", "extra host name the server answers to, besides IP addresses, localhost, names under .localhost and the --listen name: a `PATTERN` such as ptyhost.example.com or *.example.com (repeatable)")
	boolFlag(fs, &c.metricsAuth, "metrics-auth", false, "require the token on /metrics too [PTYHOST_METRICS_AUTH]")
	fs.Var(&c.workdirRoots, "workdir-root", "a `DIR` that sessions' working directories (and DOCKER bind mounts) must lie under (repeatable; default: anywhere) [PTYHOST_WORKDIR_ROOTS, a "+string(filepath.ListSeparator)+"-separated list]")
	fs.Var((*scrollbackSize)(&c.scrollback), "scrollback", "`SIZE` of the output kept per session for clients that attach later, such as 262144, 256KiB or 4MiB; at least 4KiB, at most 1GiB [PTYHOST_SCROLLBACK]")
	c.idleTimeout = core.DefaultIdleTimeout
	fs.Var((*idleTimeout)(&c.idleTimeout), "idle-timeout", "destroy a session this long (`DURATION`) after its last writing client left (viewers do not count), unless its environment or the session says otherwise; 0 destroys at once, never (or -1) keeps it until it exits or is killed [PTYHOST_IDLE_TIMEOUT]")
	durationFlag(fs, &c.linger, "linger", core.DefaultLinger, "keep an exited session attachable this long (`DURATION`) [PTYHOST_LINGER]")
	c.retention = retention(core.DefaultRetention)
	fs.Var(&c.retention, "retention", "delete the records of sessions ended this long (`DURATION`) ago, such as 72h or 7d; 0 (or forever) keeps them [PTYHOST_RETENTION]")
	durationFlag(fs, &c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long (`DURATION`) shutdown may take [PTYHOST_SHUTDOWN_TIMEOUT]")
	durationFlag(fs, &c.orphanTimeout, "orphan-timeout", defaultOrphanTimeout, "how long (`DURATION`) the plugins keep the sessions of a server that died or stopped, waiting for the next server on this data directory; then they hang them up and exit [PTYHOST_ORPHAN_TIMEOUT]")
	boolFlag(fs, &c.hangUpOnStop, "hang-up-on-stop", false, "hang every session up when the server stops (SIGTERM, SIGINT, 'ptyhost stop'), instead of leaving them running for the next server [PTYHOST_HANG_UP_ON_STOP]")
	boolFlag(fs, &c.hangUpUnknown, "hang-up-unknown-sessions", false, "for this start: hang up the sessions the plugins kept even when the database holds the record of none of them, where the server refuses to start (a new or another database: a mistyped --db, a deleted file); a flag only, for one start")
	boolFlag(fs, &c.web, "web", true, "serve the browser page (a terminal in the browser) at /; --web=false leaves it out (404), the API unchanged [PTYHOST_WEB]")
	fs.Var((*logLevel)(&c.logLevel), "log-level", "log `LEVEL`: debug, info, warn or error [PTYHOST_LOG_LEVEL]")
	fs.Func("log-format", "log `FORMAT`: text or json [PTYHOST_LOG_FORMAT]", func(v string) error {
		// In any case, as --log-level's levels.
		f := strings.ToLower(v)
		if !slices.Contains([]string{"text", "json"}, f) {
			return fmt.Errorf("%q: want text or json", v)
		}
		c.logFormat = f
		return nil
	})
	fs.StringVar(&c.readToken, "read-token", "", "a second bearer `TOKEN` (16 bytes or more) that may only list and read (GET) and attach read-only (mode=read); needs --token; prefer the variable or the configuration file, as a flag shows in the process list [PTYHOST_READ_TOKEN]")
	fs.Func("max-clients", "let at most `N` clients (viewers too) attach to one session at a time; the next is refused (HTTP 409), unless it is a writer and a viewer can give way (that viewer is closed, code 1013); 0 means no limit [PTYHOST_MAX_CLIENTS]", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: want a whole number, 0 (no limit) or more", v)
		}
		c.maxClients = n
		return nil
	})
	fs.Func("size-policy", "the `POLICY` that sizes a session's terminal when its clients ask for different sizes: latest (the last asked) or smallest (each dimension's least); when a client leaves, the size returns to what the others ask [PTYHOST_SIZE_POLICY]", func(v string) error {
		p, err := core.ParseSizePolicy(v)
		if err != nil || v == "" {
			return fmt.Errorf("%q: want latest or smallest", v)
		}
		c.sizePolicy = p
		return nil
	})
	fs.Lookup("size-policy").DefValue = string(core.SizeLatest)
	fs.Func("never-env", "never pass the environment variable `NAME` to a session, whether inherited or set by a request or an environment, such as CLAUDECODE (repeatable, or comma-separated) [PTYHOST_NEVER_ENV]", func(v string) error {
		for name := range strings.SplitSeq(v, ",") {
			// Portable names only: they go to every plugin's sessions,
			// and the SSH plugin unsets nothing else on a remote shell.
			if !shared.PortableEnvName(name) {
				return fmt.Errorf("%q: want variable names (letters, digits and _, not starting with a digit), comma-separated", v)
			}
			c.neverEnv = append(c.neverEnv, name)
		}
		return nil
	})
	boolFlag(fs, &c.record, "record", false, "record every session (asciicast v2, in DATA_DIR/recordings) unless its create, or else its environment, says \"record\": false; without it, only the sessions whose create, or else environment, says \"record\": true are [PTYHOST_RECORD]")
	boolFlag(fs, &c.recordInput, "record-input", false, "record what clients type into recorded sessions too; whoever may download a recording (the read-only token too) reads it, passwords included [PTYHOST_RECORD_INPUT]")
	c.recordMaxBytes = core.DefaultRecordingMaxBytes
	fs.Var((*recordBytes)(&c.recordMaxBytes), "record-max-bytes", "`SIZE` at which a session's recording stops (with a marker event), such as 64MiB; at least 4KiB [PTYHOST_RECORD_MAX_BYTES]")
	fs.Lookup("record-max-bytes").DefValue = humanBytes(core.DefaultRecordingMaxBytes)
	c.cluster.register(fs)
	humanDefaults(fs)
	return fs
}

// humanDefaults makes --help show serve's defaults as a person writes
// them, as the other commands do: 256KiB rather than 262144, info rather
// than INFO, 5m rather than 5m0s. Only the help reads DefValue.
func humanDefaults(fs *flag.FlagSet) {
	fs.Lookup("scrollback").DefValue = humanBytes(core.DefaultScrollbackBytes)
	fs.Lookup("log-level").DefValue = strings.ToLower(slog.LevelInfo.String())
	fs.Lookup("log-format").DefValue = "text"
	fs.VisitAll(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok && d > 0 {
				f.DefValue = humanDuration(d)
			}
		}
	})
}

// humanBytes writes n as byteSize reads it: 256KiB, 4MiB, 1GiB, or bytes.
func humanBytes(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}

// humanDuration writes d without its zero units: 5m, 1h30m, 10s.
func humanDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseServeFlags returns serve's configuration: for each setting, its
// flag if given, else its PTYHOST_* variable if set, else the
// configuration file's value (--config or PTYHOST_CONFIG) if any, else
// the default. A bad configuration file is a usageError listing every
// problem with its file:line.
func parseServeFlags(args []string, io stdio) (serveConfig, error) {
	c := serveConfig{scrollback: core.DefaultScrollbackBytes, logFormat: "text"}
	fs := newServeFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if err := printHelp(io.out, fs, serveUsage); err != nil {
				return c, err
			}
			return c, flag.ErrHelp
		}
		return c, usageError{fmt.Sprintf("serve: %v (see 'ptyhost serve --help')", err)}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := emptyGiven(fs, given); err != nil {
		return c, err
	}
	for _, name := range []string{"token", "read-token", "cluster-secret"} {
		if given[name] {
			c.tokenFlags = append(c.tokenFlags, "--"+name)
		}
	}
	if given["db"] && dsnHasPassword(c.db) {
		c.tokenFlags = append(c.tokenFlags, "--db (its password)")
	}

	if !given["config"] {
		c.configPath = os.Getenv("PTYHOST_CONFIG")
	}
	var file *fileConfig
	if c.configPath != "" {
		var err error
		file, err = loadConfigFile(c.configPath, checkSetting)
		if err != nil {
			return c, usageError{err.Error()}
		}
		c.plugins = file.plugins
		c.tokenInFile = file.tokenExposed
		if !given["allowed-origin"] && len(file.allowedOrigins) > 0 {
			c.allowedOrigins = file.allowedOrigins
		}
		if !given["allowed-host"] && len(file.allowedHosts) > 0 {
			c.allowedHosts = file.allowedHosts
		}
	}
	if err := c.setWorkdirRoots(given["workdir-root"], file); err != nil {
		return c, err
	}
	if err := checkPluginLogLevel(); err != nil {
		return c, err
	}
	for _, s := range settings() {
		if given[s.flag] {
			continue
		}
		// A variable set to "" counts as unset: PTYHOST_TOKEN= left in a
		// unit file must not turn the file's token off.
		if v := os.Getenv(s.env); v != "" {
			if err := checkSetting(s.flag, v); err != nil {
				return c, usageError{fmt.Sprintf("%s: %v", s.env, err)}
			}
			fs.Set(s.flag, v)
			continue
		}
		if v, ok := file.value(s.flag); ok {
			if err := fs.Set(s.flag, v); err != nil { // checked when loaded
				return c, usageError{fmt.Sprintf("%s: %s: %v", c.configPath, s.attr, err)}
			}
		}
	}
	if c.linger <= 0 {
		return c, usageError{"--linger must be positive"}
	}
	if c.shutdownTimeout <= 0 {
		return c, usageError{"--shutdown-timeout must be positive"}
	}
	if c.orphanTimeout <= 0 {
		return c, usageError{"--orphan-timeout must be positive"}
	}
	for _, d := range []struct{ name, value string }{{"--data-dir", c.dataDir}, {"--plugin-dir", c.pluginDir}} {
		if err := notEmpty(d.value); err != nil {
			return c, usageError{fmt.Sprintf("%s %v", d.name, err)}
		}
	}
	// The plugin directory that wins must exist (one it overrides need
	// not); the default, beside the binary, is checked as plugins load.
	if from := pluginDirSource(given["plugin-dir"], c.configPath, file); from != "" {
		if err := pluginDir(c.pluginDir); err != nil {
			return c, usageError{fmt.Sprintf("%s %v", from, err)}
		}
	}
	if c.db == "" {
		c.db = "sqlite:" + filepath.Join(c.dataDir, "ptyhost.db")
	} else if err := checkDB(c.db); err != nil {
		return c, usageError{fmt.Sprintf("--db: %v", err)}
	}
	if err := checkListen(c.listen, c.token, c.insecure); err != nil {
		return c, usageError{err.Error()}
	}
	if err := checkReadToken(c.token, c.readToken); err != nil {
		return c, usageError{err.Error()}
	}
	if err := checkTokens(c.token, c.readToken); err != nil {
		return c, usageError{err.Error()}
	}
	if err := c.finishGuard(); err != nil {
		return c, err
	}
	if err := c.cluster.check(c.db); err != nil {
		return c, usageError{err.Error()}
	}
	if err := checkClusterSecret(c.cluster.secret, c.token, c.readToken); err != nil {
		return c, usageError{err.Error()}
	}
	return c, nil
}

// checkSetting reports whether value is valid for the flag name, saying
// what is wrong in words, as the flag's value does when it parses it, and
// valueChecks beyond that.
func checkSetting(name, value string) error {
	var scratch serveConfig
	fs := newServeFlagSet(&scratch)
	err := fs.Set(name, value)
	if err == nil {
		if check := valueChecks[name]; check != nil {
			return check(value)
		}
		return nil
	}
	// The flag's own words (durationValue and boolValue say what they
	// want, flagvalues.go), with the value in front unless they have it.
	if q := strconv.Quote(value); strings.HasPrefix(err.Error(), q) {
		return err
	}
	return fmt.Errorf("%q: %v", value, err)
}

// valueChecks hold what a value of a setting must be beyond parsing, for
// checkSetting: a variable's or the configuration file's value is then
// refused with the variable's name or the file's position. (A flag's is
// checked once every setting is in, with the others that depend on
// several.) A token's message does not repeat the token.
var valueChecks = map[string]func(value string) error{
	"linger":           positiveDuration,
	"shutdown-timeout": positiveDuration,
	"orphan-timeout":   positiveDuration,
	"token":            tokenLength,
	"read-token":       tokenLength,
	"cluster-secret":   tokenChars,
	"data-dir":         notEmpty,
	"plugin-dir":       notEmpty, // and pluginDir, once it is known which wins
	"db": func(v string) error {
		if v == "" {
			return nil // the default, in the data directory
		}
		return checkDB(v)
	},
	"listen": func(v string) error {
		_, err := splitListen(v)
		return err
	},
	"node-lease": func(v string) error {
		if d, _ := time.ParseDuration(v); d < minNodeLease {
			return fmt.Errorf("%q: want at least %v", v, minNodeLease)
		}
		return nil
	},
}

// idleTimeout is a flag value: a duration >= 0, or -1 / never (stored as
// -1) for no idle timeout.
type idleTimeout time.Duration

func (d *idleTimeout) String() string {
	if *d < 0 {
		return "never"
	}
	return time.Duration(*d).String()
}

func (d *idleTimeout) Set(v string) error {
	if v == "-1" || v == "never" {
		*d = -1
		return nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur < 0 {
		return fmt.Errorf("want a duration >= 0 such as 5m, 0 to destroy at once, or -1 (never)")
	}
	*d = idleTimeout(dur)
	return nil
}

// managerIdleTimeout maps the flag's convention (0 at once, negative never)
// to core's.
func managerIdleTimeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return core.DestroyWhenIdle
	case d < 0:
		return core.NoIdleTimeout
	default:
		return d
	}
}

// page is api.Options.Page: the browser page, or nil (no page) with
// --web=false.
func (c serveConfig) page() http.Handler {
	if !c.web {
		return nil
	}
	return webui.Handler()
}
