package shared

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintVersion(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{[]string{"--version", "x"}, false},
		{[]string{"version"}, false},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if got := printVersion(tt.args, &b, "ptyhost-plugin-x"); got != tt.want || (b.Len() > 0) != tt.want {
			t.Errorf("printVersion(%q) = %v, printed %q", tt.args, got, b.String())
		}
		if tt.want && !strings.HasPrefix(b.String(), "ptyhost-plugin-x version "+Version()+" (go") {
			t.Errorf("printVersion(%q) printed %q", tt.args, b.String())
		}
	}
}

func TestVersionStamped(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	if got := Version(); got != "v9.8.7" {
		t.Errorf("Version() = %q with a stamp", got)
	}
	version = ""
	if got := Version(); got == "" {
		t.Error("Version() is empty without a stamp")
	}
}
