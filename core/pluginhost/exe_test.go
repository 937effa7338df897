package pluginhost

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// The process a pinned plugin starts is the file whose checksum was
// checked, even when the plugin's name points at another file by the time
// it starts.
func TestPinnedPluginRunsTheFileChecked(t *testing.T) {
	ctx := pluginsContext(t)
	bin := fakePluginBin(t)
	sum, err := fileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	linkPlugin(t, dir, "tool", bin)
	other := filepath.Join(t.TempDir(), "other")
	writeExecutable(t, filepath.Dir(other), "other", "#!/bin/sh\nexec "+bin+" -types OTHER\n", 0o755)
	afterChecksum = func(string) { // the name now points at another file
		link := filepath.Join(dir, ExecutablePrefix+"tool")
		if err := os.Remove(link); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(other, link); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { afterChecksum = nil })
	p, err := loadPlugins(ctx, t, Options{Dir: dir, Plugins: []Config{{Name: "tool", SHA256: sum}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("tool")
	if st.State != core.PluginRunning || !slices.Equal(st.Types, []string{"FAKE"}) || st.SHA256 != sum {
		t.Errorf("plugin %+v; want the pinned file running, serving FAKE", st)
	}
}

// A relative plugin directory is the directory, not a name looked up in
// $PATH: a plugin of that name elsewhere on $PATH is not what runs.
func TestRelativePluginDir(t *testing.T) {
	ctx := pluginsContext(t)
	bin := fakePluginBin(t)
	work := t.TempDir()
	linkPlugin(t, work, "tool", bin)
	elsewhere := t.TempDir()
	writeExecutable(t, elsewhere, ExecutablePrefix+"tool", "#!/bin/sh\nexec "+bin+" -types PATH\n", 0o755)
	t.Setenv("PATH", elsewhere+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(work)
	p, err := loadPlugins(ctx, t, Options{Dir: ".", Plugins: []Config{{Name: "tool"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("tool")
	if st.State != core.PluginRunning || !slices.Equal(st.Types, []string{"FAKE"}) || st.Path != filepath.Join(work, ExecutablePrefix+"tool") {
		t.Errorf("plugin %+v; want %s running, serving FAKE", st, filepath.Join(work, ExecutablePrefix+"tool"))
	}
}

// looseModes names an executable, or a directory holding it, that its
// group or others may write to; a sticky directory (/tmp) is not one.
func TestLooseModes(t *testing.T) {
	dir := t.TempDir()
	target := t.TempDir()
	writeExecutable(t, target, "real", "#!/bin/sh\n", 0o755)
	link := filepath.Join(dir, ExecutablePrefix+"x")
	if err := os.Symlink(filepath.Join(target, "real"), link); err != nil {
		t.Fatal(err)
	}
	loose := func() string {
		t.Helper()
		e, err := openExecutable(link)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		return e.looseModes()
	}
	if why := loose(); why != "" {
		t.Errorf("0755 files in 0700 directories: %q, want nothing", why)
	}
	chmod := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	chmod(target, 0o777)
	if why := loose(); !strings.Contains(why, "its directory "+target+" is writable by its group or others") {
		t.Errorf("the symlink's target in a 0777 directory: %q", why)
	}
	chmod(target, 0o777|os.ModeSticky)
	chmod(dir, 0o775)
	chmod(filepath.Join(target, "real"), 0o757)
	why := loose()
	for _, want := range []string{"the executable " + link + " is writable", "its directory " + dir + " is writable"} {
		if !strings.Contains(why, want) {
			t.Errorf("looseModes = %q, want %q in it", why, want)
		}
	}
	if strings.Contains(why, target) {
		t.Errorf("looseModes = %q names the sticky directory %s", why, target)
	}

	// A directory further up that others may write to can rename the
	// plugin directory away and put another in its place.
	top := t.TempDir()
	plugins := filepath.Join(top, "a", "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, plugins, ExecutablePrefix+"y", "#!/bin/sh\n", 0o755)
	link = filepath.Join(plugins, ExecutablePrefix+"y")
	if why := loose(); why != "" {
		t.Errorf("0755 directories all the way up: %q, want nothing", why)
	}
	chmod(top, 0o777)
	if why := loose(); why != "the directory above it "+top+" is writable by its group or others (mode -rwxrwxrwx)" {
		t.Errorf("a 0777 directory two levels up: %q", why)
	}
	chmod(top, 0o777|os.ModeSticky)
	if why := loose(); why != "" {
		t.Errorf("a sticky 0777 directory two levels up: %q, want nothing", why)
	}
}

// A plugin started through its open file is named after its executable,
// not after the descriptor (shared.Serve names it): ps and pgrep find it.
func TestPluginProcessName(t *testing.T) {
	ctx := pluginsContext(t)
	dir := t.TempDir()
	linkPlugin(t, dir, "tool", fakePluginBin(t))
	p, err := loadPlugins(ctx, t, Options{Dir: dir, Plugins: []Config{{Name: "tool"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("tool")
	if st.State != core.PluginRunning {
		t.Fatalf("plugin %+v", st)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.PID))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(comm)), (ExecutablePrefix + "tool")[:15]; got != want {
		t.Errorf("the plugin's process name is %q, want %q", got, want)
	}
}
