package pluginhost

import (
	"crypto/hmac"
	"crypto/rand"
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
// with what it would launch the plugin with, and says which differ. The
// checksums are HMAC-SHA-256 keyed with a random salt of the record's, so
// that a copy of the record cannot be matched against checksums computed
// beforehand, nor a value across records (a record of an earlier version,
// without a salt, has plain SHA-256 ones).
// Nothing but the plugin's restart changes a running process's
// environment, and a reattached process serves the new server's sessions
// too.
type launchSums struct {
	// Salt keys the checksums, hex; "" for plain SHA-256.
	Salt string `json:"salt,omitempty"`
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
// launch it now, with a new salt.
func (s *supervised) launchSums() *launchSums {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	return s.launchSumsSalted(hex.EncodeToString(salt))
}

// launchSumsSalted is launchSums with the given salt, to compare with a
// record's.
func (s *supervised) launchSumsSalted(salt string) *launchSums {
	ls := &launchSums{Salt: salt, Args: keyedSum(salt, strings.Join(s.conf.Args, "\x00")), Env: map[string]string{}}
	for _, kv := range s.conf.environ(s.builtin, os.Environ()) {
		name, value, _ := strings.Cut(kv, "=")
		ls.Env[name] = keyedSum(salt, value) // later entries win, as in exec
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

// keyedSum is the hex HMAC-SHA-256 of s keyed with salt, or its plain
// SHA-256 without one.
func keyedSum(salt, s string) string {
	if salt == "" {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	mac := hmac.New(sha256.New, []byte(salt))
	mac.Write([]byte(s))
	return hex.EncodeToString(mac.Sum(nil))
}
