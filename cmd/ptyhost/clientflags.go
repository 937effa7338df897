package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	server string
	token  string
	// tokenOverHTTP lets the token go in the clear, over http://, to a
	// server beyond loopback.
	tokenOverHTTP bool
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.Var(&nonEmpty{&f.server, "PTYHOST_SERVER (or " + defaultServer + ")"}, "server", "server `URL`, or HOST:PORT for http://HOST:PORT (env PTYHOST_SERVER; default "+defaultServer+")")
	fs.Var(&nonEmpty{&f.token, "PTYHOST_TOKEN"}, "token", "API `TOKEN`, sent as Authorization: Bearer; prefer the variable, as a flag shows in the process list (env PTYHOST_TOKEN)")
	boolFlag(fs, &f.tokenOverHTTP, "token-over-http", false, "send the token over plain http:// to a server beyond loopback, where anyone on the network between can read it (env PTYHOST_TOKEN_OVER_HTTP)")
}

// nonEmpty is a string flag that refuses the empty string, as serve's
// --token does: --server "$SERVER" with SERVER unset would otherwise
// reach the server PTYHOST_SERVER or the default names ('ptyhost stop
// --hang-up' included), and --token "$TOKEN" send PTYHOST_TOKEN.
type nonEmpty struct {
	p        *string
	fallback string // what omitting the flag uses
}

func (v *nonEmpty) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *nonEmpty) Set(s string) error {
	if s == "" {
		return fmt.Errorf("is empty: omit the flag to use %s", v.fallback)
	}
	*v.p = s
	return nil
}

// client applies the environment defaults and returns a client.
func (f *clientFlags) client() (*client, error) {
	server, token := f.server, f.token
	if server == "" {
		server = os.Getenv("PTYHOST_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	if token == "" {
		token = os.Getenv("PTYHOST_TOKEN")
	}
	if err := tokenChars(token); err != nil {
		// Sent as it is, it fails every request in a way that reads
		// as the network's fault.
		return nil, usageError{fmt.Sprintf("--token (PTYHOST_TOKEN): %v", err)}
	}
	c, err := newClient(server, token)
	if err != nil {
		return nil, err
	}
	overHTTP := f.tokenOverHTTP
	if v := os.Getenv("PTYHOST_TOKEN_OVER_HTTP"); !overHTTP && v != "" {
		if overHTTP, err = strconv.ParseBool(v); err != nil {
			// Read as false, it would refuse the token with advice to
			// set the variable that is set.
			return nil, usageError{fmt.Sprintf("PTYHOST_TOKEN_OVER_HTTP: %q: %v (1 or 0)", v, errNotBool)}
		}
	}
	if token != "" && c.base.Scheme == "http" && !loopbackHost(c.base.Hostname()) && !overHTTP {
		return nil, usageError{fmt.Sprintf("the token would cross the network in the clear to %s over http://: give an https:// URL (a TLS proxy in front of the server), or, on a network you trust, --token-over-http (PTYHOST_TOKEN_OVER_HTTP=1)", cell(c.base.Host))}
	}
	return c, nil
}

// loopbackHost reports whether host (a URL's, without its port) names this
// machine alone, as the HTTP client treats it: a loopback address, or
// exactly "localhost". Those alone it never sends through a proxy
// (http.ProxyFromEnvironment); any other name (LOCALHOST, localhost.,
// a name under .localhost) may go to HTTP_PROXY, or be resolved by DNS
// to anywhere.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
