package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// The checks of serve's values beyond parsing: tokens and secrets,
// directories, the database's DSN and durations (valueChecks).

// minTokenBytes is the least length of the API tokens, in bytes, as of
// the cluster secret (minClusterSecret): the full token runs commands as
// the server's user, and the read-only one reads every session's output.
const minTokenBytes = 16

// checkTokens refuses a token too short to resist guessing, whatever
// the listen address (a loopback port is open to every local user, and a
// tunnel or proxy may carry it further), or one a request cannot carry
// (tokenLength). Errors name the setting, never the token.
func checkTokens(token, readToken string) error {
	for _, t := range []struct{ name, value string }{
		{"--token (PTYHOST_TOKEN, or token in the configuration file)", token},
		{"--read-token (PTYHOST_READ_TOKEN, or read_token in the configuration file)", readToken},
	} {
		if err := tokenLength(t.value); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	return nil
}

// tokenChars refuses a token a request cannot carry as it is: one with
// a control character (the CR of a file with CRLF line ends, say), which
// makes every client's request fail, or a space at either end, which the
// header loses. The message does not repeat the token.
func tokenChars(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' || c == 0x7f || (c == ' ' && (i == 0 || i == len(v)-1)) {
			return fmt.Errorf("byte %d of %d is %s: want no control character, and no space at either end", i+1, len(v), describeByte(c))
		}
	}
	return nil
}

// isASCII reports whether s is ASCII only: what a browser can send in a
// header.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// describeByte names a byte of a secret without showing the secret: a
// control character's name, or its value.
func describeByte(c byte) string {
	switch c {
	case '\r':
		return "a carriage return (a file with CRLF line ends?)"
	case '\n':
		return "a newline"
	case '\t':
		return "a tab"
	case ' ':
		return "a space"
	}
	return fmt.Sprintf("0x%02x", c)
}

func positiveDuration(v string) error {
	if d, _ := time.ParseDuration(v); d <= 0 {
		return fmt.Errorf("%q: must be positive", v)
	}
	return nil
}

// tokenLength refuses a short token, or one a request cannot carry
// (tokenChars); "" is none.
func tokenLength(v string) error {
	if v != "" && len(v) < minTokenBytes {
		return fmt.Errorf("%d bytes long: want at least %d, such as the output of 'openssl rand -hex 16'", len(v), minTokenBytes)
	}
	return tokenChars(v)
}

// notEmpty refuses an empty directory, which would quietly mean the
// working directory (--data-dir) or no plugins at all (--plugin-dir).
func notEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// checkDB refuses a DSN the store does not take, naming the forms it
// does, before anything starts.
func checkDB(v string) error {
	if path, ok := strings.CutPrefix(v, "sqlite:"); ok {
		if path, _, _ = strings.Cut(path, "?"); path == "" {
			return errors.New(`sqlite: has no path: want sqlite:PATH, such as sqlite:/var/lib/ptyhost/ptyhost.db`)
		}
		return nil
	}
	for _, prefix := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(v, prefix) {
			return nil
		}
	}
	return errors.New(`want sqlite:PATH or postgres://… (postgresql://…)`)
}

// pluginDirSource names where the plugin directory in force came from:
// the flag, the variable or the configuration file; "" for the default.
func pluginDirSource(flagGiven bool, configPath string, file *fileConfig) string {
	switch {
	case flagGiven:
		return "--plugin-dir"
	case os.Getenv("PTYHOST_PLUGIN_DIR") != "":
		return "PTYHOST_PLUGIN_DIR:"
	}
	if _, ok := file.value("plugin-dir"); ok {
		return configPath + ": plugin_dir:"
	}
	return ""
}

// pluginDir refuses a plugin directory that is empty, missing or not a
// directory, which the plugins would fail to load from once the server
// starts (a relative one is taken from the working directory).
func pluginDir(v string) error {
	if err := notEmpty(v); err != nil {
		return err
	}
	fi, err := os.Stat(v)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%q does not exist: want the directory of the ptyhost-plugin-* binaries", v)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%q: %v", v, err)
	case !fi.IsDir():
		return fmt.Errorf("%q is not a directory: want the directory of the ptyhost-plugin-* binaries", v)
	}
	return nil
}

// dsnHasPassword reports whether a PostgreSQL URL carries a password, in
// its user information or as the password parameter.
func dsnHasPassword(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return false
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Has("password")
}

// emptyGiven refuses a secret's, the database's or the configuration
// file's flag given empty: it would replace the variable's or the
// configuration file's value (an empty --token would serve without one,
// an empty --config without the file's token and roots), where it is most
// likely a mistake such as --token "$TOKEN" with TOKEN unset.
func emptyGiven(flags *flag.FlagSet, given map[string]bool) error {
	const orFile = " or the configuration file's value"
	for _, s := range []struct{ name, fallback string }{
		{"config", "PTYHOST_CONFIG"},
		{"token", "PTYHOST_TOKEN" + orFile},
		{"read-token", "PTYHOST_READ_TOKEN" + orFile},
		{"cluster-secret", "PTYHOST_CLUSTER_SECRET" + orFile},
		{"db", "PTYHOST_DB" + orFile},
	} {
		if given[s.name] && flags.Lookup(s.name).Value.String() == "" {
			return usageError{fmt.Sprintf("--%s is empty: omit the flag to use %s", s.name, s.fallback)}
		}
	}
	return nil
}

// checkClusterSecret refuses a cluster secret equal to a token: a request
// with the secret skips the token checks and claims its own scope, so the
// read-only token's holder would have the full token's power (and the
// token's, the nodes' trust in each other). Errors never name the values.
func checkClusterSecret(secret, token, readToken string) error {
	switch {
	case secret == "":
		return nil
	case secret == token:
		return errors.New("--cluster-secret must differ from --token: a request carrying the secret skips the token checks and says its own scope")
	case secret == readToken:
		return errors.New("--cluster-secret must differ from --read-token: the read-only token would then claim the full scope as the secret")
	}
	return nil
}

// checkReadToken refuses a read-only token that would grant nothing apart:
// one without the full token (every request passes then) or equal to it.
func checkReadToken(token, readToken string) error {
	switch {
	case readToken == "":
		return nil
	case token == "":
		return errors.New("--read-token needs --token: without a token every request may do everything, and a read-only token restricts nothing")
	case readToken == token:
		return errors.New("--read-token must differ from --token: the same token cannot be both read-only and full")
	}
	return nil
}

// checkPluginLogLevel refuses a PTYHOST_PLUGIN_LOG_LEVEL that names no
// level: the server passes it on to the plugins, which would log at info.
// Empty counts as unset, as for every other variable.
func checkPluginLogLevel() error {
	if _, err := shared.ParseLogLevel(os.Getenv(shared.LogLevelEnv)); err != nil {
		return usageError{fmt.Sprintf("%s: %v", shared.LogLevelEnv, err)}
	}
	return nil
}
