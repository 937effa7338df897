package shared

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is the release this binary was built as, stamped at build time
// by the Makefile for the ptyhost command and every built-in plugin alike:
//
//	go build -ldflags "-X github.com/ptyhost/ptyhost/shared.version=v1.2.0"
//
// Empty when not stamped; Version then asks the build information.
var version string

// Version returns the version of the running binary: the one stamped at
// build time; else the main module's version as the go command recorded it
// (a tagged release for 'go install module@version', a pseudo-version
// from the repository's commit for a build in a checkout); else the
// commit the binary was built from (with "+dirty" when the checkout had
// changes); else "unknown".
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return "devel-" + rev[:min(len(rev), 12)] + dirty
}

// VersionLine is what a binary's --version prints: its name, Version, and
// the Go release and platform it was built for.
func VersionLine(name string) string {
	return fmt.Sprintf("%s version %s (%s %s/%s)", name, Version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// VersionFlag is for a plugin's main, before Serve: when the binary was
// run as "NAME --version" or "NAME -version", with no other argument, it
// prints VersionLine(name) to stdout and exits 0. Otherwise it returns and
// Serve goes on. The host starts a plugin with no arguments but its
// configuration's (pluginhost.Config.Args, a plugin block's args), so only
// a block whose args are exactly that one flag stops the plugin here, and
// its start fails: stdout is go-plugin's handshake.
//
//	func main() {
//		shared.VersionFlag("ptyhost-plugin-myenv")
//		shared.Serve(myenv.New(shared.Logger().Named("myenv")))
//	}
func VersionFlag(name string) {
	if printVersion(os.Args[1:], os.Stdout, name) {
		os.Exit(0)
	}
}

// printVersion prints name's version line to w and reports true when args
// ask for it.
func printVersion(args []string, w io.Writer, name string) bool {
	if len(args) != 1 || (args[0] != "--version" && args[0] != "-version") {
		return false
	}
	fmt.Fprintln(w, VersionLine(name))
	return true
}
