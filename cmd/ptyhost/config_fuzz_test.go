package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzConfigFile feeds arbitrary files to the server's configuration file
// loader. It must never panic, and every problem it reports is a line that
// says where: FILE:LINE,COLUMN: what.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		fullConfig,
		"",
		"# only a comment\n",
		`listen = "127.0.0.1:7420"` + "\n",
		`listen = 7420` + "\n",
		`listen = "not an address"` + "\n",
		`scrollback = "lots"` + "\n",
		`idle_timeout = "-5s"` + "\n",
		`log_level = "chatty"` + "\n",
		`allowed_origins = "one"` + "\n",
		`allowed_origins = [1, 2]` + "\n",
		`bogus = 1` + "\n",
		`listen = "a"` + "\n" + `listen = "b"` + "\n",
		`listen = "${env.HOME}"` + "\n",
		`listen = upper("x")` + "\n",
		`token = null` + "\n",
		"plugin \"tmux\" {\n  sha256 = \"nothex\"\n}\n",
		"plugin \"tmux\" {}\nplugin \"tmux\" {}\n",
		"plugin \"../evil\" {}\n",
		"plugin \"x\" {\n  env = { \"A=B\" = \"c\" }\n}\n",
		"plugin \"x\" {\n  args = \"--flag\"\n}\n",
		"plugin {}\n",
		"plugin \"a\" \"b\" {}\n",
		"plugin \"x\" {\n  unknown = 1\n}\n",
		"listen = \"unterminated\n",
		"listen = <<EOT\nheredoc\nEOT\n",
		"{\"listen\": \"127.0.0.1:1\"}",
		"listen = \"\xff\"\n",
		"\x00",
		"a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
	} {
		f.Add(s)
	}
	where := regexp.MustCompile(`^(.+):[0-9]+,[0-9]+: \S`)
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(t.TempDir(), "ptyhost.hcl")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		fc, err := loadConfigFile(path, checkSetting)
		if len(content) > maxConfigFileBytes {
			// Refused whole, before it is parsed: there is no line to name.
			if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
				t.Fatalf("a file of %d bytes: %v, want it refused as too large", len(content), err)
			}
			return
		}
		if err == nil {
			if fc == nil {
				t.Fatalf("%q: no error and no configuration", content)
			}
			for flag, v := range fc.values {
				if err := checkSetting(flag, v); err != nil {
					t.Fatalf("%q: accepted %s = %q, which the flag refuses: %v", content, flag, v, err)
				}
			}
			return
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			m := where.FindStringSubmatch(line)
			if m == nil || m[1] != path {
				t.Fatalf("%q: error line %q does not start with %s:LINE,COLUMN:", content, line, path)
			}
		}
	})
}
