package exampletest

import (
	"os/exec"
	"strings"
	"testing"
)

// The example plugins are what an outside author would write: of ptyhost,
// each imports the plugin SDK and nothing else (their tests add
// sharedtest).
func TestExamplesImportOnlyTheSDK(t *testing.T) {
	const module = "github.com/ptyhost/ptyhost"
	for _, name := range []string{"plugin-tmux", "plugin-minimal"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", ".")
			cmd.Dir = exampleDir(t, name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list in examples/%s: %v", name, err)
			}
			allowed := map[string]bool{
				module + "/shared":       true,
				module + "/shared/proto": true,
				// The SDK's own, through shared: its byte ring, its raw
				// reads and writes, its sweep's directory checks, and the
				// log file of a plugin whose host is gone.
				module + "/internal/bytering":  true,
				module + "/internal/rawio":     true,
				module + "/internal/staledir":  true,
				module + "/internal/pluginlog": true,
				module + "/examples/" + name:   true,
			}
			var sdk bool
			for _, dep := range strings.Fields(string(out)) {
				sdk = sdk || dep == module+"/shared"
				if (dep == module || strings.HasPrefix(dep, module+"/")) && !allowed[dep] {
					t.Errorf("the plugin imports %s", dep)
				}
			}
			if !sdk {
				t.Errorf("the plugin does not import %s/shared: go list said %s", module, out)
			}
		})
	}
}
