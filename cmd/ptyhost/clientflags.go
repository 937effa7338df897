package main

import (
	"flag"
	"fmt"
	"os"
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	server string
	token  string
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server `URL`, or HOST:PORT for http://HOST:PORT (env PTYHOST_SERVER; default "+defaultServer+")")
	fs.StringVar(&f.token, "token", "", "API `TOKEN`, sent as Authorization: Bearer; prefer the variable, as a flag shows in the process list (env PTYHOST_TOKEN)")
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
	return newClient(server, token)
}
