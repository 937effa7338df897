package pluginhost

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

func TestConfigsFromBlocks(t *testing.T) {
	const src = `
plugin "tmux" {
  sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
  env    = { TMUX_TMPDIR = "/run/ptyhost" }
  args   = ["--flag"]
}
plugin "tmux" {}
plugin "bad name!" {}
plugin "pinned" {
  sha256 = "nope"
}
plugin "envy" {
  env = { "A=B" = "c" }
}
`
	configs, diags := ConfigsFromBlocks(pluginBlocks(t, src))
	if len(configs) != 1 {
		t.Fatalf("configs = %+v, want only tmux", configs)
	}
	c := configs[0]
	if c.Name != "tmux" || c.SHA256 != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" ||
		c.Env["TMUX_TMPDIR"] != "/run/ptyhost" || len(c.Args) != 1 {
		t.Errorf("tmux = %+v", c)
	}
	want := []struct {
		summary string
		line    int
	}{
		{"Duplicate plugin block", 7},
		{"Invalid plugin name", 8},
		{"Invalid sha256", 10},
		{"Invalid env", 13},
	}
	if len(diags) != len(want) {
		t.Fatalf("diagnostics: %v", diags)
	}
	for i, w := range want {
		d := diags[i]
		if d.Summary != w.summary || d.Subject == nil || d.Subject.Start.Line != w.line {
			t.Errorf("diagnostic %d: %s at %v, want %s at line %d", i, d.Summary, d.Subject, w.summary, w.line)
		}
	}
	if !strings.Contains(diags[0].Detail, "test.hcl:2,") {
		t.Errorf("duplicate's detail %q does not name the first block", diags[0].Detail)
	}
}

// NUL fails an exec only when the plugin launches, far from the file: the
// block is refused instead, with the file, line and attribute at fault.
func TestConfigsFromBlocksNUL(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    string // the diagnostic's position and summary
		details string
	}{
		{
			name:    "env value",
			src:     "plugin \"host\" {\n  env = { FOO = \"a\\u0000b\" }\n}\n",
			want:    "test.hcl:2,9-",
			details: `Invalid env; plugin host: env FOO: its value contains NUL (at byte 1)`,
		},
		{
			name:    "arg",
			src:     "plugin \"ssh\" {\n  env  = { A = \"b\" }\n  args = [\"-v\", \"a\\u0000b\"]\n}\n",
			want:    "test.hcl:3,10-",
			details: `Invalid args; plugin ssh: args[1] "a\x00b" contains NUL`,
		},
		{
			name:    "env name",
			src:     "plugin \"host\" {\n  env = { \"A\\u0000B\" = \"c\" }\n}\n",
			want:    "test.hcl:2,9-",
			details: `Invalid env; plugin host: env name "A\x00B"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configs, diags := ConfigsFromBlocks(pluginBlocks(t, tt.src))
			if len(configs) != 0 || len(diags) != 1 {
				t.Fatalf("configs = %+v, diagnostics = %v; want one diagnostic and no config", configs, diags)
			}
			msg := diags[0].Error()
			if !strings.HasPrefix(msg, tt.want) || !strings.Contains(msg, tt.details) {
				t.Errorf("diagnostic %q, want %q…%q", msg, tt.want, tt.details)
			}
		})
	}
}

// A key repeated in env is refused at the repetition, naming the first:
// HCL keeps the last value silently, so `env = { A = "x", A = "y" }`
// started the plugin with A=y. A quoted key and a bare one are the same.
func TestConfigsFromBlocksDuplicateEnvKey(t *testing.T) {
	const src = "plugin \"docker\" {\n  env = { A = \"x\", B = \"z\",\n    \"A\" = \"y\" }\n}\nplugin \"host\" {\n  env = { A = \"x\", a = \"y\" }\n}\n"
	configs, diags := ConfigsFromBlocks(pluginBlocks(t, src))
	if len(configs) != 1 || configs[0].Name != "host" || len(diags) != 1 {
		t.Fatalf("configs = %+v, diagnostics = %v; want host alone and one diagnostic", configs, diags)
	}
	const want = `test.hcl:3,5-8: Duplicate key; env: "A" is already set at test.hcl:2,11`
	if msg := diags[0].Error(); msg != want {
		t.Errorf("diagnostic %q, want %q", msg, want)
	}
}

// pluginBlocks decodes the plugin blocks of src, a file test.hcl.
func pluginBlocks(t *testing.T, src string) []Block {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var file struct {
		Plugins []Block `hcl:"plugin,block"`
	}
	if diags := gohcl.DecodeBody(f.Body, nil, &file); diags.HasErrors() {
		t.Fatal(diags)
	}
	return file.Plugins
}
