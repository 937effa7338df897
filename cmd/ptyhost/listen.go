package main

import (
	"errors"
	"fmt"
	"net"
)

// checkListen refuses, without a token, an address that is not on
// loopback: every interface (no host) or an IP address beyond loopback.
// A name is judged by the address it binds (checkBound): one that
// /etc/hosts puts on loopback, as Debian does the machine's own name, is
// not refused, and one that does not resolve is said to.
func checkListen(addr, token string, insecure bool) error {
	host, err := splitListen(addr)
	if err != nil {
		return fmt.Errorf("--listen %w", err)
	}
	if token != "" || insecure || isLoopback(host) || host != "" && net.ParseIP(host) == nil {
		return nil
	}
	return fmt.Errorf("--listen %q is reachable beyond this machine: set --token (or PTYHOST_TOKEN), or pass --insecure to serve without authentication", addr)
}

// splitListen returns the host of a listen address, or an error that
// quotes it: not net's, which repeats it unquoted, so that a newline in
// it would break the message's line.
func splitListen(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
			return "", fmt.Errorf("%q: the port must be a number from 0 to 65535 (0: any free one) or a service's name", addr)
		}
		return host, nil
	}
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return "", fmt.Errorf("%q: %s", addr, ae.Err)
	}
	return "", fmt.Errorf("%q is not HOST:PORT", addr)
}

// listenNetwork is the network to listen on addr with: "tcp4" for an
// IPv4 address, so that 0.0.0.0 serves IPv4 alone, as it says (Go's "tcp"
// takes an unspecified IPv4 address for every address of both families);
// "tcp" for the rest, so an IPv6 address, [::] among them, and a name
// listen as Go and the system do by default.
func listenNetwork(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

// listenTCP is net.Listen; a test replaces it to see what checkBound
// does with an address that a name resolved beyond loopback.
var listenTCP = net.Listen

// checkBound refuses, without a token, a listener that is not on
// loopback. checkListen leaves names to it: Go resolves a name, even
// "localhost", through /etc/hosts and then DNS, which may put it
// anywhere, so the address actually bound decides.
func checkBound(bound net.Addr, addr, token string, insecure bool) error {
	if token != "" || insecure {
		return nil
	}
	if tcp, ok := bound.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q resolved to %s, which is reachable beyond this machine: set --token (or PTYHOST_TOKEN), or pass --insecure to serve without authentication", addr, bound)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
