package shared

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// CheckEnv rejects variables a process environment cannot hold: an empty
// name, a name with '=' or NUL, a value with NUL. Variables are checked in
// name order, so the error names the same one every time.
func CheckEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("bad variable name %q", k)
		}
		if strings.ContainsRune(env[k], 0) {
			return fmt.Errorf("variable %s: value contains NUL", k)
		}
	}
	return nil
}

// CheckPortableEnv is CheckEnv for variables a POSIX shell must be able
// to assign (a remote login that sets them with `export`): names are
// letters, digits and '_', not starting with a digit.
func CheckPortableEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !PortableEnvName(k) {
			return fmt.Errorf("variable name %q: use letters, digits and '_', not starting with a digit", k)
		}
		if strings.ContainsRune(env[k], 0) {
			return fmt.Errorf("variable %s: value contains NUL", k)
		}
	}
	return nil
}

var portableEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// PortableEnvName reports whether s is a portable environment variable
// name, which a POSIX shell can also assign.
func PortableEnvName(s string) bool { return portableEnvName.MatchString(s) }

// pluginEnv lists the variables go-plugin and ptyhost set for the plugin
// process itself; the processes a plugin starts do not inherit them.
var pluginEnv = map[string]bool{
	MagicCookieKey:             true,
	LogLevelEnv:                true,
	HostPIDEnv:                 true,
	"PLUGIN_PROTOCOL_VERSIONS": true,
	"PLUGIN_MIN_PORT":          true,
	"PLUGIN_MAX_PORT":          true,
	"PLUGIN_CLIENT_CERT":       true,
	"PLUGIN_MULTIPLEX_GRPC":    true,
	"PLUGIN_UNIX_SOCKET_DIR":   true,
	"PLUGIN_UNIX_SOCKET_GROUP": true,
}

// IsPluginEnv reports whether name is a variable go-plugin or ptyhost set
// for the plugin process itself, which ChildEnv leaves out.
func IsPluginEnv(name string) bool { return pluginEnv[name] }

// ChildEnv returns the environment of a process a plugin starts: base
// (KEY=VALUE entries, usually os.Environ(), through EnvInDir for the
// process's directory) without the plugin's own variables (IsPluginEnv),
// with each layer's variables set in turn, a later layer winning. A
// variable keeps the place where it first appears; a name set twice in
// base keeps the last value.
func ChildEnv(base []string, layers ...map[string]string) []string {
	env := make([]string, 0, len(base)+8)
	index := make(map[string]int, len(base)+8)
	set := func(k, kv string) {
		if i, ok := index[k]; ok {
			env[i] = kv
			return
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !pluginEnv[k] {
			set(k, kv)
		}
	}
	for _, layer := range layers {
		for _, k := range slices.Sorted(maps.Keys(layer)) {
			set(k, k+"="+layer[k])
		}
	}
	return env
}

// EnvInDir returns base (KEY=VALUE entries, usually os.Environ()) for a
// process that starts in the directory dir (its exec.Cmd's Dir), to pass
// to ChildEnv or ChildEnvWithout as their base: PWD is dir, in place of the
// plugin's, and OLDPWD, the plugin's previous directory, is left out. Go's
// exec.Cmd sets PWD for Dir only when Env is nil, and a program run
// without a shell reads both as it finds them. PWD=dir comes after the
// rest of base, so a layer or the unset names of ChildEnvWithout still
// decide; an empty dir (the plugin's own directory) keeps base's PWD.
// base is not modified.
func EnvInDir(base []string, dir string) []string {
	env := make([]string, 0, len(base)+1)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "OLDPWD" || k == "PWD" && dir != "" {
			continue
		}
		env = append(env, kv)
	}
	if dir != "" {
		env = append(env, "PWD="+dir)
	}
	return env
}

// CheckEnvNames rejects names a process environment cannot hold, as
// CheckEnv does for a variable's name: empty, or holding '=' or NUL.
func CheckEnvNames(names []string) error {
	for _, k := range names {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("bad variable name %q", k)
		}
	}
	return nil
}

// ChildEnvWithout is ChildEnv without the variables unset names
// (SpawnRequest.UnsetEnv): they are removed last, from base and from every
// layer alike, so that an inherited variable that would upset the child
// (CLAUDECODE makes a nested Claude Code refuse to start) never reaches it.
func ChildEnvWithout(base []string, unset []string, layers ...map[string]string) []string {
	env := ChildEnv(base, layers...)
	if len(unset) == 0 {
		return env
	}
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(unset, k)
	})
}
