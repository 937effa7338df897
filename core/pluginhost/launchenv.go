package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"slices"
	"strings"
)

// launchSums is what a plugin process was launched with beyond its
// executable, kept in its reattach record as checksums (the values may be
// secrets): a later server that reattaches to the process compares them
// with what it would launch the plugin with, and says which differ.
// Nothing but the plugin's restart changes a running process's
// environment, and a reattached process serves the new server's sessions
// too.
type launchSums struct {
	// Args is the checksum of the plugin's arguments.
	Args string `json:"args"`
	// Env is, for each variable of the plugin's environment (without
	// go-plugin's own), the checksum of its value.
	Env map[string]string `json:"env"`
}

// volatileEnv are variables set anew for every process by whatever starts
// the server (systemd, a shell), not by its operator: a change in them is
// not worth a warning.
var volatileEnv = []string{
	"_", "INVOCATION_ID", "JOURNAL_STREAM", "OLDPWD", "PWD", "SHLVL", "SYSTEMD_EXEC_PID",
	"SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "XDG_SESSION_ID", // a login's
}

// launchSums returns the launch sums of s's plugin as this server would
// launch it now.
func (s *supervised) launchSums() *launchSums {
	ls := &launchSums{Args: sha256Hex(strings.Join(s.conf.Args, "\x00")), Env: map[string]string{}}
	for _, kv := range s.conf.environ(s.builtin, os.Environ()) {
		name, value, _ := strings.Cut(kv, "=")
		ls.Env[name] = sha256Hex(value) // later entries win, as in exec
	}
	return ls
}

// differences returns the names of the variables that are in one of old
// and now and not the other, or in both with other values, sorted, and
// whether the arguments differ.
func (old *launchSums) differences(now *launchSums) (names []string, args bool) {
	for _, n := range slices.Sorted(maps.Keys(old.Env)) {
		if v, ok := now.Env[n]; (!ok || v != old.Env[n]) && !slices.Contains(volatileEnv, n) {
			names = append(names, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(now.Env)) {
		if _, ok := old.Env[n]; !ok && !slices.Contains(volatileEnv, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, old.Args != now.Args
}

// sha256Hex is the hex SHA-256 of s.
func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
