package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigNestingTooDeep: a file whose brackets nest without end is
// refused at once with FILE:LINE,COLUMN, instead of overflowing the
// parser's stack (a crash, and a GiB of memory on the way); brackets in
// strings and comments do not count, and a real file's nesting passes.
func TestConfigNestingTooDeep(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, src, want string
	}{
		{"lists", "listen = \"127.0.0.1:7420\"\nx = " + strings.Repeat("[", 150000) + "\n", ":2,205: Nesting too deep"},
		{"parentheses", strings.Repeat("(", 500000), ":1,201: Nesting too deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refusedQuickly(t, filepath.Join(dir, tt.name+".hcl"), tt.src, tt.want, strings.Contains, 5*time.Second)
		})
	}
	// Deep brackets inside strings and comments are text.
	deep := strings.Repeat("[", 1000)
	path := filepath.Join(dir, "ok.hcl")
	src := "# " + deep + "\n/* " + deep + " */\nlisten = \"127.0.0.1:7420\" // " + deep + "\ntoken = \"" + deep + "\\\"" + deep + "\"\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfigFile(path, func(string, string) error { return nil }); err != nil && strings.Contains(err.Error(), "Nesting") {
		t.Errorf("brackets in strings and comments counted: %v", err)
	}
}

// TestConfigTooManyElements: a file whose lists and objects hold more
// elements than maxConfigElements in all is refused at once with
// FILE:LINE,COLUMN of the list that passes the bound (decoding such a list
// took time quadratic in its length: 20,000 names, 3.5 s; 80,000, 100 s), whether one
// list is long or many are; a file at the bound passes the check.
//
// "At once" is before the file is decoded: each file ends with an
// argument that the decoding refuses, so that a decode first would answer
// with that error instead. (A bound on the time alone does not tell: on a
// loaded machine, under the race detector, the check of the 20,000 names
// took 5 s, and their decode without it 18 s on a less loaded one.)
func TestConfigTooManyElements(t *testing.T) {
	dir := t.TempDir()
	list := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			fmt.Fprintf(&b, "\"A%d\",", i)
		}
		return b.String() + "]"
	}
	var plugins strings.Builder
	for i := range 10 {
		fmt.Fprintf(&plugins, "plugin \"p%d\" {\n  args = %s\n}\n", i, list(maxConfigElements/8))
	}
	for _, tt := range []struct {
		name, src, want string
	}{
		{"never_env", "listen = \"127.0.0.1:7420\"\nnever_env = " + list(20000) + "\n", ":2,13: Too many elements"},
		{"allowed_hosts", "allowed_hosts = " + list(maxConfigElements+1) + "\n", ":1,17: Too many elements"},
		{"env", "plugin \"docker\" {\n  env = {\n" + strings.Repeat("    A = \"x\"\n", maxConfigElements+1) + "  }\n}\n", ":2,9: Too many elements"},
		{"many lists", plugins.String(), ":26,10: Too many elements"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src + "not_a_setting = true\n"
			refusedQuickly(t, filepath.Join(dir, tt.name+".hcl"), src, tt.want, strings.HasPrefix, time.Minute)
		})
	}
	src := "never_env = " + list(maxConfigElements/2) + "\nallowed_hosts = " + list(maxConfigElements/2) + "\n"
	if _, err := loadConfigFile(writeConfig(t, src), func(string, string) error { return nil }); err != nil {
		t.Errorf("%d elements in all refused: %v", maxConfigElements, err)
	}
}

// refusedQuickly writes src to path and checks that loadConfigFile
// refuses it within the bound, with an error that match finds path+want
// in.
func refusedQuickly(t *testing.T, path, src, want string, match func(s, substr string) bool, within time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := loadConfigFile(path, func(string, string) error { return nil })
	if err == nil || !match(err.Error(), path+want) {
		t.Fatalf("loadConfigFile: %v, want %q", err, path+want)
	}
	if took := time.Since(start); took > within {
		t.Errorf("refusing took %v", took)
	}
}
