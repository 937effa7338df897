package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/shared"
)

// The server's configuration file, in HCL:
//
//	listen     = "127.0.0.1:7420"
//	plugin_dir = "/usr/lib/ptyhost/plugins"
//	scrollback = "256KiB"
//	orphan_timeout  = "10m"   # sessions wait this long for the next server
//	hang_up_on_stop = false   # true: every stop hangs the sessions up
//	web         = false       # serve no browser page at /
//	read_token  = "…"         # may only list and attach read-only
//	max_clients = 4           # per session; 0 means no limit
//	size_policy = "smallest"  # or "latest" (the default)
//	record      = true        # record every session (DATA_DIR/recordings)
//	record_input     = false  # record what clients type too
//	record_max_bytes = "64MiB"
//	node_name      = "a"                    # a node of a cluster (cluster.go)
//	advertise_url  = "http://10.0.0.1:7420"
//	cluster_secret = "…"                    # 16 bytes or more
//	node_lease     = "10s"
//	plugin "tmux" {
//	  sha256 = "9f86d0…"                        # optional pin
//	  env    = { TMUX_TMPDIR = "/run/ptyhost" }  # its whole environment
//	  args   = ["--flag"]
//	}
//
// Every attribute is optional. A flag wins over its PTYHOST_* variable,
// which wins over the file, which wins over the default.

// configFile is the file's schema.
type configFile struct {
	Listen          *string            `hcl:"listen,optional"`
	DB              *string            `hcl:"db,optional"`
	DataDir         *string            `hcl:"data_dir,optional"`
	PluginDir       *string            `hcl:"plugin_dir,optional"`
	Token           *string            `hcl:"token,optional"`
	Scrollback      *string            `hcl:"scrollback,optional"`
	IdleTimeout     *string            `hcl:"idle_timeout,optional"`
	Linger          *string            `hcl:"linger,optional"`
	Retention       *string            `hcl:"retention,optional"`
	ShutdownTimeout *string            `hcl:"shutdown_timeout,optional"`
	OrphanTimeout   *string            `hcl:"orphan_timeout,optional"`
	HangUpOnStop    *bool              `hcl:"hang_up_on_stop,optional"`
	Web             *bool              `hcl:"web,optional"`
	LogLevel        *string            `hcl:"log_level,optional"`
	LogFormat       *string            `hcl:"log_format,optional"`
	AllowedOrigins  []string           `hcl:"allowed_origins,optional"`
	AllowedHosts    []string           `hcl:"allowed_hosts,optional"`
	MetricsAuth     *bool              `hcl:"metrics_auth,optional"`
	WorkdirRoots    []string           `hcl:"workdir_roots,optional"`
	Plugins         []pluginhost.Block `hcl:"plugin,block"`
	ReadToken       *string            `hcl:"read_token,optional"`
	MaxClients      *int               `hcl:"max_clients,optional"`
	SizePolicy      *string            `hcl:"size_policy,optional"`
	Record          *bool              `hcl:"record,optional"`
	RecordInput     *bool              `hcl:"record_input,optional"`
	RecordMaxBytes  *string            `hcl:"record_max_bytes,optional"`
	NeverEnv        []string           `hcl:"never_env,optional"`
	NodeName        *string            `hcl:"node_name,optional"`
	AdvertiseURL    *string            `hcl:"advertise_url,optional"`
	ClusterSecret   *string            `hcl:"cluster_secret,optional"`
	NodeLease       *string            `hcl:"node_lease,optional"`
}

// setting is one server setting: its flag, its environment variable and
// its attribute in the configuration file.
type setting struct {
	flag, env, attr string
}

// settings lists, in precedence order's terms, every setting that a flag,
// a variable and the file can all give.
func settings() []setting {
	return []setting{
		{"listen", "PTYHOST_LISTEN", "listen"},
		{"db", "PTYHOST_DB", "db"},
		{"data-dir", "PTYHOST_DATA_DIR", "data_dir"},
		{"plugin-dir", "PTYHOST_PLUGIN_DIR", "plugin_dir"},
		{"token", "PTYHOST_TOKEN", "token"},
		{"scrollback", "PTYHOST_SCROLLBACK", "scrollback"},
		{"idle-timeout", "PTYHOST_IDLE_TIMEOUT", "idle_timeout"},
		{"linger", "PTYHOST_LINGER", "linger"},
		{"retention", "PTYHOST_RETENTION", "retention"},
		{"shutdown-timeout", "PTYHOST_SHUTDOWN_TIMEOUT", "shutdown_timeout"},
		{"orphan-timeout", "PTYHOST_ORPHAN_TIMEOUT", "orphan_timeout"},
		{"hang-up-on-stop", "PTYHOST_HANG_UP_ON_STOP", "hang_up_on_stop"},
		{"web", "PTYHOST_WEB", "web"},
		{"log-level", "PTYHOST_LOG_LEVEL", "log_level"},
		{"log-format", "PTYHOST_LOG_FORMAT", "log_format"},
		{"metrics-auth", "PTYHOST_METRICS_AUTH", "metrics_auth"},
		{"read-token", "PTYHOST_READ_TOKEN", "read_token"},
		{"max-clients", "PTYHOST_MAX_CLIENTS", "max_clients"},
		{"size-policy", "PTYHOST_SIZE_POLICY", "size_policy"},
		{"record", "PTYHOST_RECORD", "record"},
		{"record-input", "PTYHOST_RECORD_INPUT", "record_input"},
		{"record-max-bytes", "PTYHOST_RECORD_MAX_BYTES", "record_max_bytes"},
		{"never-env", "PTYHOST_NEVER_ENV", "never_env"},
		{"node-name", "PTYHOST_NODE_NAME", "node_name"},
		{"advertise-url", "PTYHOST_ADVERTISE_URL", "advertise_url"},
		{"cluster-secret", "PTYHOST_CLUSTER_SECRET", "cluster_secret"},
		{"node-lease", "PTYHOST_NODE_LEASE", "node_lease"},
	}
}

// fileConfig is a configuration file, decoded and checked.
type fileConfig struct {
	path string
	// values maps a flag name to the file's value for it.
	values         map[string]string
	allowedOrigins []string
	allowedHosts   []string
	workdirRoots   []string
	plugins        []pluginhost.Config
	// tokenExposed: the file holds the token and others may read it.
	tokenExposed bool
}

// loadConfigFile reads the configuration file at path. check validates a
// value as the flag named would (the file's values are checked whether or
// not a flag or variable overrides them). Every problem found is reported,
// one a line, each as FILE:LINE,COLUMN: what.
func loadConfigFile(path string, check func(flag, value string) error) (*fileConfig, error) {
	src, err := readConfigFile(path)
	var ue usageError
	if errors.As(err, &ue) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading the configuration file: %w", err)
	}
	if err := checkNesting(path, src); err != nil {
		return nil, err
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, configError(path, diags)
	}
	if err := checkElements(path, f.Body); err != nil {
		return nil, err
	}
	var raw configFile
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, configError(path, diags)
	}
	fc := &fileConfig{path: path, values: map[string]string{}, allowedOrigins: raw.AllowedOrigins, allowedHosts: raw.AllowedHosts}
	attrs := map[string]*string{
		"listen": raw.Listen, "db": raw.DB, "data_dir": raw.DataDir, "plugin_dir": raw.PluginDir,
		"token": raw.Token, "scrollback": raw.Scrollback, "idle_timeout": raw.IdleTimeout,
		"linger": raw.Linger, "retention": raw.Retention, "shutdown_timeout": raw.ShutdownTimeout, "log_level": raw.LogLevel,
		"log_format": raw.LogFormat, "orphan_timeout": raw.OrphanTimeout,
		"read_token": raw.ReadToken, "size_policy": raw.SizePolicy,
		"node_name": raw.NodeName, "advertise_url": raw.AdvertiseURL, "cluster_secret": raw.ClusterSecret,
		"node_lease": raw.NodeLease,
	}
	if raw.MaxClients != nil {
		v := strconv.Itoa(*raw.MaxClients)
		attrs["max_clients"] = &v
	}
	attrs["record_max_bytes"] = raw.RecordMaxBytes
	// Each name on its own: joined, a comma inside one would split it,
	// and an empty list would be one empty name. An empty list is none.
	if i := slices.IndexFunc(raw.NeverEnv, func(n string) bool { return !shared.PortableEnvName(n) }); i >= 0 {
		diags = diags.Append(pluginhost.InvalidAttribute(f.Body, "never_env", "Invalid never_env",
			fmt.Sprintf("%q: want a variable name (letters, digits and _, not starting with a digit)", raw.NeverEnv[i])))
	} else if len(raw.NeverEnv) > 0 {
		v := strings.Join(raw.NeverEnv, ",")
		attrs["never_env"] = &v
	}
	for attr, b := range map[string]*bool{"metrics_auth": raw.MetricsAuth, "hang_up_on_stop": raw.HangUpOnStop,
		"record": raw.Record, "record_input": raw.RecordInput, "web": raw.Web} {
		if b != nil {
			v := strconv.FormatBool(*b)
			attrs[attr] = &v
		}
	}
	for _, s := range settings() {
		v := attrs[s.attr]
		if v == nil {
			continue
		}
		if err := check(s.flag, *v); err != nil {
			diags = diags.Append(pluginhost.InvalidAttribute(f.Body, s.attr, "Invalid "+s.attr, err.Error()))
			continue
		}
		fc.values[s.flag] = *v
	}
	if err := (api.GuardOptions{AllowedHosts: raw.AllowedHosts}).Validate(); err != nil {
		diags = diags.Append(pluginhost.InvalidAttribute(f.Body, "allowed_hosts", "Invalid allowed_hosts", err.Error()))
	}
	if err := (api.GuardOptions{AllowedOrigins: raw.AllowedOrigins}).Validate(); err != nil {
		diags = diags.Append(pluginhost.InvalidAttribute(f.Body, "allowed_origins", "Invalid allowed_origins", err.Error()))
	}
	if err := shared.CheckRoots(raw.WorkdirRoots); err != nil {
		diags = diags.Append(pluginhost.InvalidAttribute(f.Body, "workdir_roots", "Invalid workdir_roots", err.Error()))
	}
	fc.workdirRoots = raw.WorkdirRoots
	if raw.Token != nil || raw.ReadToken != nil || raw.ClusterSecret != nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fc.tokenExposed = true
		}
	}

	plugins, pdiags := pluginhost.ConfigsFromBlocks(raw.Plugins)
	diags = diags.Extend(pdiags)
	fc.plugins = plugins
	if diags.HasErrors() {
		return nil, configError(path, diags)
	}
	return fc, nil
}

// maxConfigFileBytes bounds the configuration files the command line
// reads (serve --config, env add and update --config-file): 1 MiB, the
// most the server takes in a request body, and far more than any
// configuration needs.
const maxConfigFileBytes = 1 << 20

// readConfigFile returns the content of the configuration file at path. It
// refuses a directory, a socket and anything larger than
// maxConfigFileBytes, each with a usageError naming path: a device such as
// /dev/zero, or a huge file, would otherwise grow the process until it is
// killed. It reads at most one byte past the bound.
func readConfigFile(path string) ([]byte, error) {
	// A named pipe or a device (`<(jq …)`, /dev/stdin) is read as a file
	// is, within the size bound (/dev/zero is refused as too large).
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkConfigFileInfo(path, fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The file may have been replaced since: judge the one opened.
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkConfigFileInfo(path, fi); err != nil {
		return nil, err
	}
	// The limit holds even if the file grows while it is read.
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigFileBytes {
		return nil, configTooLarge(path)
	}
	return b, nil
}

// checkConfigFileInfo refuses a directory, a socket, or a file too large
// to be a configuration file.
func checkConfigFileInfo(path string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return usageError{fmt.Sprintf("%s is a directory: name a configuration file", path)}
	case fi.Mode()&(fs.ModeSocket|fs.ModeIrregular) != 0:
		return usageError{fmt.Sprintf("%s is a socket or an irregular file: name a configuration file", path)}
	case fi.Size() > maxConfigFileBytes:
		return configTooLarge(path)
	}
	return nil
}

func configTooLarge(path string) error {
	return usageError{fmt.Sprintf("%s is larger than 1 MiB, the most a configuration file may be: name a smaller one", path)}
}

// position prints a range's start as FILE:LINE,COLUMN.
func position(r hcl.Range) string {
	return fmt.Sprintf("%s:%d,%d", r.Filename, r.Start.Line, r.Start.Column)
}

// configError is the error for diags: its errors, one a line, each
// starting with its position.
func configError(path string, diags hcl.Diagnostics) error {
	var lines []string
	// In the file's order, whichever check found them.
	diags = slices.Clone(diags)
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil || b.Subject == nil:
			return 0
		case a.Subject.Start.Line != b.Subject.Start.Line:
			return a.Subject.Start.Line - b.Subject.Start.Line
		}
		return a.Subject.Start.Column - b.Subject.Start.Column
	})
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := path
		if d.Subject != nil {
			where = position(*d.Subject)
		}
		line := where + ": " + d.Summary
		if d.Detail != "" {
			// One line a problem: HCL's details may hold paragraphs.
			line += "; " + strings.Join(strings.Fields(d.Detail), " ")
		}
		lines = append(lines, line)
	}
	return errors.New(strings.Join(slices.Compact(lines), "\n"))
}

// value returns the file's value for a flag; a nil file has none.
func (fc *fileConfig) value(flag string) (string, bool) {
	if fc == nil {
		return "", false
	}
	v, ok := fc.values[flag]
	return v, ok
}
