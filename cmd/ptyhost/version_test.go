package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

func TestVersionCommand(t *testing.T) {
	want := "ptyhost version " + shared.Version() + " ("
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, want) || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want one line starting %q", args, code, stdout, stderr, want)
		}
	}
	code, _, stderr := runCmd(t, "version", "extra")
	if code != 2 || !strings.Contains(stderr, `version: unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q; want 2", code, stderr)
	}
	code, _, stderr = runCmd(t, "version", "--bogus")
	if code != 2 || !strings.Contains(stderr, "version: flag provided but not defined: -bogus") {
		t.Errorf("version --bogus: exit %d, stderr %q; want 2", code, stderr)
	}
}

// versionLine is what --version prints: a name, a version (stamped, a
// module version, devel-COMMIT[+dirty] or unknown) and the Go release.
var versionLine = regexp.MustCompile(`^(ptyhost|ptyhost-plugin-[a-z]+) version (\S+) \(go\S* \w+/\w+\)\n$`)

// TestE2EVersionBinaries runs --version on the binaries the tests use,
// the command and each built-in plugin, and on binaries built with the
// Makefile's -ldflags stamp.
func TestE2EVersionBinaries(t *testing.T) {
	bins := map[string]string{"ptyhost": testbin.Ptyhost(t)}
	for _, p := range []string{"host", "docker", "ssh"} {
		bins["ptyhost-plugin-"+p] = testbin.Path(t, "plugins/"+p, "plugins/ptyhost-plugin-"+p)
	}
	for name, bin := range bins {
		out, err := exec.Command(bin, "--version").Output()
		m := versionLine.FindStringSubmatch(string(out))
		if err != nil || m == nil || m[1] != name {
			t.Errorf("%s --version: %v, %q", name, err, out)
		}
	}

	// Stamped as 'make build' does.
	dir := t.TempDir()
	for _, pkg := range []string{"cmd/ptyhost", "plugins/host"} {
		bin := filepath.Join(dir, filepath.Base(pkg))
		build := exec.Command("go", "build", "-ldflags", "-X github.com/ptyhost/ptyhost/shared.version=v9.8.7-test", "-o", bin, "./"+pkg)
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", pkg, err, out)
		}
		out, err := exec.Command(bin, "--version").Output()
		if m := versionLine.FindStringSubmatch(string(out)); err != nil || m == nil || m[2] != "v9.8.7-test" {
			t.Errorf("stamped %s --version: %v, %q", pkg, err, out)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "ptyhost"), "version").Output()
	if m := versionLine.FindStringSubmatch(string(out)); err != nil || m == nil || m[2] != "v9.8.7-test" {
		t.Errorf("stamped ptyhost version: %v, %q", err, out)
	}
	// Only --version alone prints: anything else goes to Serve, which
	// without the host's handshake says it is a plugin and exits.
	if out, _ := exec.Command(filepath.Join(dir, "host"), "--version", "x").Output(); strings.Contains(string(out), "v9.8.7-test") {
		t.Errorf("host --version x printed the version: %q", out)
	}
}
