package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ptyhost/ptyhost"

// deps returns every package pkg imports, directly or not (tests excluded).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath", pkg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all []string
	dec := json.NewDecoder(out)
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.ImportPath)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return all
}

// sdkOwn are the internal packages the SDK stands on: shared keeps output
// in a byte ring, reads and writes with rawio, sweeps with staledir and
// keeps a held plugin's log with pluginlog.
var sdkOwn = map[string]bool{
	module + "/internal/bytering":  true,
	module + "/internal/rawio":     true,
	module + "/internal/staledir":  true,
	module + "/internal/pluginlog": true,
}

func TestImportArrows(t *testing.T) {
	tests := []struct {
		pkg       string
		forbidden []string // import path prefixes
	}{
		{module + "/shared", []string{module + "/core", module + "/plugins/", module + "/cmd/", "gorm.io/"}},
		{module + "/shared/sharedtest", []string{module + "/core", module + "/plugins/", module + "/cmd/", "gorm.io/"}},
		{module + "/core", []string{module + "/plugins/", module + "/cmd/", module + "/core/gormstore", module + "/core/pluginhost", "gorm.io/"}},
		// Plugin hosting stands on the SDK and on core's contract alone.
		{module + "/core/pluginhost", []string{module + "/plugins/", module + "/cmd/", module + "/core/gormstore", "gorm.io/"}},
		{module + "/core/gormstore", []string{module + "/plugins/", module + "/cmd/"}},
		// The HTTP API stands on core's exported methods; core never
		// reaches back up to it.
		{module + "/core", []string{module + "/core/api"}},
		{module + "/core/api", []string{module + "/plugins/", module + "/cmd/", module + "/core/gormstore", module + "/core/pluginhost", "gorm.io/"}},
		// The fake environment serves core's own tests, so it stands on the
		// SDK alone.
		{module + "/internal/fakeenv", []string{module + "/core", module + "/plugins/", module + "/cmd/", module + "/internal/", "gorm.io/"}},
		// The byte ring serves both ends of a session, the SDK included:
		// nothing of ours.
		{module + "/internal/bytering", []string{module + "/"}},
		// So do its raw reads and writes, and the sweeps' directory checks.
		{module + "/internal/rawio", []string{module + "/"}},
		{module + "/internal/staledir", []string{module + "/"}},
		// A held plugin's log file is written by the SDK and read by the
		// host: nothing of ours either.
		{module + "/internal/pluginlog", []string{module + "/"}},
		// Whether a process runs, for the plugins' host and the store.
		{module + "/internal/proc", []string{module + "/"}},
		// The browser page is embedded files and a handler: the standard
		// library only; the API takes it as an http.Handler, so embedders
		// who serve no page carry none of its bytes.
		{module + "/core/webui", []string{module + "/", "github.com/", "golang.org/", "google.golang.org/", "gorm.io/"}},
		{module + "/core/api", []string{module + "/core/webui"}},
		// The wire protocol is importable by third parties: nothing of ours.
		{module + "/core/wsproto", []string{module + "/core/", module + "/shared", module + "/plugins/", module + "/cmd/", module + "/internal/", "gorm.io/"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.pkg, module+"/"), func(t *testing.T) {
			for _, dep := range deps(t, tt.pkg) {
				if dep == tt.pkg {
					continue // go list -deps lists the package itself
				}
				if sdkOwn[dep] && strings.HasPrefix(tt.pkg, module+"/internal/") {
					continue // the SDK's own, which it carries everywhere
				}
				for _, bad := range tt.forbidden {
					if dep == strings.TrimSuffix(bad, "/") || strings.HasPrefix(dep, bad) {
						t.Errorf("%s imports %s", tt.pkg, dep)
					}
				}
			}
		})
	}
}

// The plugins are separate programs: no plugin imports another, and none
// imports the core's store or the command.
func TestPluginsStandAlone(t *testing.T) {
	out, err := exec.Command("go", "list", module+"/plugins/...").Output()
	if err != nil {
		t.Fatalf("go list plugins: %v", err)
	}
	plugins := strings.Fields(string(out))
	if len(plugins) == 0 {
		t.Fatal("no plugins found")
	}
	for _, pkg := range plugins {
		for _, dep := range deps(t, pkg) {
			if strings.HasPrefix(dep, module+"/plugins/") && dep != pkg {
				t.Errorf("%s imports %s", pkg, dep)
			}
			if strings.HasPrefix(dep, module+"/core") || strings.HasPrefix(dep, module+"/cmd/") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}

// The generated gRPC code is the SDK's own: only packages under shared
// import shared/proto, their tests included, so the wire types never leak
// into the core or the plugins.
func TestProtoOnlyInShared(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
		module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("go list found only %d packages", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg := fields[0]
		if pkg == module+"/shared" || strings.HasPrefix(pkg, module+"/shared/") {
			continue
		}
		for _, imp := range fields[1:] {
			if imp == module+"/shared/proto" {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
