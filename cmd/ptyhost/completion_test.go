package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// completionScript writes 'ptyhost completion SHELL' to a file and
// returns its path.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, stdout, stderr := runCmd(t, "completion", shell)
	if code != 0 || stderr != "" || stdout == "" {
		t.Fatalf("completion %s: exit %d, stderr %q", shell, code, stderr)
	}
	path := filepath.Join(t.TempDir(), "ptyhost."+shell)
	if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needShell skips the test when shell is not installed, unless
// PTYHOST_INTEGRATION=1 (make test, which installs zsh and fish) asks for
// every test to run: then it fails.
func needShell(t *testing.T, shell string) string {
	t.Helper()
	p, err := exec.LookPath(shell)
	if err != nil {
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatalf("%s is not installed (make test installs it)", shell)
		}
		t.Skipf("%s not installed", shell)
	}
	return p
}

func TestCompletionUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"completion"}, "completion: want one shell: bash, zsh or fish"},
		{[]string{"completion", "tcsh"}, `completion: unknown shell "tcsh": want bash, zsh or fish`},
		{[]string{"completion", "bash", "zsh"}, "completion: want one shell"},
	} {
		code, stdout, stderr := runCmd(t, tt.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

// TestCompletionSpec: the flags come from the commands' own help.
func TestCompletionSpec(t *testing.T) {
	cmds := completionSpec(t.Context())
	find := func(path string) *complCommand {
		for i := range cmds {
			if cmds[i].path == path {
				return &cmds[i]
			}
		}
		t.Fatalf("no command %q in %+v", path, cmds)
		return nil
	}
	has := func(path, flag, arg string) {
		t.Helper()
		c := find(path)
		if !slices.ContainsFunc(c.flags, func(f complFlag) bool { return f.spelled() == flag && f.arg == arg }) {
			t.Errorf("%s has no %s %s: %+v", path, flag, arg, c.flags)
		}
	}
	has("attach", "--detach-key", "KEY")
	has("attach", "--server", "URL")
	has("run", "--cwd", "DIR")
	has("run", "--keep", "")
	has("serve", "--scrollback", "SIZE")
	has("serve", "--config", "FILE")
	has("env add", "--type", "TYPE")
	has("version", "--help", "")
	if subs := find("env").subs; !slices.Contains(subs, "add") || !slices.Contains(subs, "ls") {
		t.Errorf("env subcommands %q", subs)
	}
	if subs := find("plugins").subs; !slices.Equal(subs, []string{"ls", "restart"}) {
		t.Errorf("plugins subcommands %q", subs)
	}
	if subs := find("nodes").subs; !slices.Equal(subs, []string{"ls", "rm"}) {
		t.Errorf("nodes subcommands %q", subs)
	}
	has("nodes rm", "--server", "URL")
}

// bashComplete sources script and completes the words (the last one
// being completed) with _ptyhost, returning the candidates.
func bashComplete(t *testing.T, script string, env []string, words ...string) []string {
	t.Helper()
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
		strconv.Itoa(len(words)-1) + "\n_ptyhost\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir = t.TempDir()
	os.Mkdir(filepath.Join(cmd.Dir, "adir"), 0o755)
	os.WriteFile(filepath.Join(cmd.Dir, "afile"), nil, 0o644)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func TestCompletionBash(t *testing.T) {
	needShell(t, "bash")
	script := completionScript(t, "bash")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"ptyhost", "at"}, []string{"attach"}},
		{[]string{"ptyhost", "comp"}, []string{"completion"}},
		{[]string{"ptyhost", "--v"}, []string{"--version"}},
		{[]string{"ptyhost", "attach", "--de"}, []string{"--detach-key"}},
		{[]string{"ptyhost", "serve", "--scr"}, []string{"--scrollback"}},
		{[]string{"ptyhost", "env", "a"}, []string{"add"}},
		{[]string{"ptyhost", "env", "add", "--ty"}, []string{"--type"}},
		{[]string{"ptyhost", "env", "add", "--type", ""}, []string{"HOST", "DOCKER", "SSH"}},
		{[]string{"ptyhost", "env", "add", "--server", "x", "--na"}, []string{"--name"}},
		{[]string{"ptyhost", "env", "add", "--server", "add", "--na"}, []string{"--name"}},
		{[]string{"ptyhost", "run", "--cwd", "a"}, []string{"adir"}},
		{[]string{"ptyhost", "serve", "--config", "af"}, []string{"afile"}},
		{[]string{"ptyhost", "run", "--env", "x", "--", "a"}, nil}, // commands: checked below
		{[]string{"ptyhost", "completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"ptyhost", "plugins", ""}, []string{"ls", "restart"}},
		{[]string{"ptyhost", "nodes", ""}, []string{"ls", "rm"}},
		{[]string{"ptyhost", "nodes", "rm", "--se"}, []string{"--server"}},
		{[]string{"ptyhost", "attach", "--server", ""}, nil},
	}
	for _, tt := range tests {
		got := bashComplete(t, script, nil, tt.words...)
		if tt.want == nil {
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.words, got, tt.want)
		}
	}
	if got := bashComplete(t, script, nil, "ptyhost", "run", "--", "bas"); !slices.Contains(got, "bash") {
		t.Errorf("run -- bas: %q, want bash among them", got)
	}
}

// TestE2ECompletionSessionIDs: the scripts complete the IDs of the
// server's running sessions for attach and kill.
func TestE2ECompletionSessionIDs(t *testing.T) {
	needShell(t, "bash")
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"id": "compl-one", "command": []string{"/bin/sh", "-c", "read x"}})
	bin := testbin.Ptyhost(t)
	script := completionScript(t, "bash")
	env := []string{"PTYHOST_SERVER=" + srv.URL}
	for _, cmd := range []string{"attach", "kill"} {
		if got := bashComplete(t, script, env, bin, cmd, "compl"); !slices.Equal(got, []string{id}) {
			t.Errorf("bash: %s compl: %q, want %q", cmd, got, id)
		}
	}
	if _, err := exec.LookPath("fish"); err == nil {
		fishScript := completionScript(t, "fish")
		dir := t.TempDir()
		if err := os.Symlink(bin, filepath.Join(dir, "ptyhost")); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("fish", "--no-config", "-c", "source "+fishScript+"; complete -C 'ptyhost attach compl'")
		cmd.Env = append(os.Environ(), "PTYHOST_SERVER="+srv.URL, "PATH="+dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != id {
			t.Errorf("fish: attach compl: %v, %q, want %q", err, out, id)
		}
	}
}

func TestCompletionZsh(t *testing.T) {
	needShell(t, "zsh")
	script := completionScript(t, "zsh")
	if out, err := exec.Command("zsh", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	// Loaded after compinit, it registers _ptyhost, which completes as
	// in bash when called as bashcompinit's _bash_complete calls it:
	// with ksharrays set, COMP_WORDS and COMP_CWORD.
	prog := "autoload -U compinit && compinit -u -D\nsource " + script + "\n" +
		"setopt ksharrays; COMP_WORDS=(ptyhost attach --de); COMP_CWORD=2; _ptyhost; print -l -- $COMPREPLY\n"
	out, err := exec.Command("zsh", "-f", "-c", prog).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "--detach-key" {
		t.Errorf("zsh: %v\n%s", err, out)
	}
}

func TestCompletionFish(t *testing.T) {
	needShell(t, "fish")
	script := completionScript(t, "fish")
	if out, err := exec.Command("fish", "--no-execute", script).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v\n%s", err, out)
	}
	tests := []struct {
		line string
		want []string // among the candidates (without descriptions)
		not  []string
	}{
		{"ptyhost at", []string{"attach"}, nil},
		{"ptyhost attach --de", []string{"--detach-key"}, nil},
		{"ptyhost env ", []string{"add", "ls", "rm"}, []string{"attach"}},
		{"ptyhost nodes ", []string{"ls", "rm"}, []string{"attach"}},
		{"ptyhost nodes rm --", []string{"--server", "--token"}, []string{"--json"}},
		{"ptyhost env add --", []string{"--type", "--name"}, []string{"--detach-key"}},
		{"ptyhost env add --type ", []string{"HOST", "DOCKER", "SSH"}, nil},
		{"ptyhost ls -", []string{"-a", "-q"}, nil},
		{"ptyhost ls ", nil, []string{"add"}},
		{"ptyhost completion ", []string{"bash", "zsh", "fish"}, nil},
	}
	for _, tt := range tests {
		out, err := exec.Command("fish", "--no-config", "-c", "source "+script+"; complete -C '"+tt.line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %q: %v\n%s", tt.line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q: %q lacks %q", tt.line, got, w)
			}
		}
		for _, w := range tt.not {
			if slices.Contains(got, w) {
				t.Errorf("%q: %q has %q", tt.line, got, w)
			}
		}
	}
}
