package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ptyhost/ptyhost/shared"
)

// The version is stamped at build time into the SDK, for the command and
// every built-in plugin at once (the Makefile's LDFLAGS); shared.Version
// says what a binary built without the stamp reports.

const versionHelp = `Usage: ptyhost version

Print the version of this ptyhost binary, and the Go release and platform
it was built for. 'ptyhost --version' prints the same. A binary built by
'make build' carries the checkout's 'git describe' (or make VERSION=...);
one built otherwise, the version the go command recorded: the release for
'go install ...@v1.2.0'; for a build in a checkout, the commit's tag or a
pseudo-version (v0.0.0-20261206034041-edcc40b046a0), with +dirty when the
checkout had changes; or "unknown" when it recorded no version control
information (-buildvcs=false).

Each plugin binary answers --version the same way
(ptyhost-plugin-host --version).
`

func runVersion(_ context.Context, args []string, stdio stdio) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pos, help, err := parseFlags(fs, versionHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("version: unexpected argument %q (see 'ptyhost version --help')", pos[0])}
	}
	_, err = fmt.Fprintln(stdio.out, shared.VersionLine("ptyhost"))
	return err
}
