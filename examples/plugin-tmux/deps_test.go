package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The plugin is what an outside author would write: of ptyhost, it
// imports the plugin SDK and nothing else (its tests add sharedtest).
func TestImportsOnlyTheSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/ptyhost/ptyhost"
	allowed := map[string]bool{
		module + "/shared":               true,
		module + "/shared/proto":         true,
		module + "/examples/plugin-tmux": true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if (dep == module || strings.HasPrefix(dep, module+"/")) && !allowed[dep] {
			t.Errorf("the plugin imports %s", dep)
		}
	}
}
