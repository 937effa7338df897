package pluginhost

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// A reattached plugin that never answers Sessions neither holds the
// server's start (Survivors, which Reconcile calls with serve's endless
// context) nor keeps running with sessions the server gave up: it is
// killed after reattachTimeout, and its supervisor starts it anew.
func TestSurvivorsBoundsASilentPlugin(t *testing.T) {
	ctx := pluginsContext(t)
	dir := t.TempDir()
	linkPlugin(t, dir, "silent", testbin.Path(t, "core/pluginhost/testdata/silentplugin", "plugins/ptyhost-plugin-silent"))
	opts := durableOptions(t)
	opts.Dir, opts.Plugins = dir, []Config{{Name: "silent"}}

	first, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := first.Plugin("silent")
	if st.State != core.PluginRunning {
		first.Close()
		t.Fatalf("first load: %+v", st)
	}
	old := st.PID
	killAtEnd(t, old)
	first.Detach(ctx) // it does not say it holds no session: it stays
	if !alive(old) {
		t.Fatalf("the plugin %d is gone after Detach", old)
	}

	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if st := waitPlugin(ctx, t, p, "silent", "reattach", running); st.PID != old {
		t.Fatalf("plugin %+v, want the reattached pid %d", st, old)
	}
	type result struct {
		list []core.Survivor
		err  error
	}
	answered := make(chan result, 1)
	go func() {
		list, err := p.Survivors(context.Background()) // as Reconcile is called by serve: no deadline
		answered <- result{list, err}
	}()
	var list []core.Survivor
	select {
	case r := <-answered:
		list, err = r.list, r.err
	case <-time.After(reattachTimeout + 10*time.Second):
		p.Close() // kills the plugin, which ends the call
		<-answered
		t.Fatalf("Survivors has not returned %v after it began", reattachTimeout+10*time.Second)
	}
	if len(list) != 0 || err == nil || !strings.Contains(err.Error(), "plugin silent") {
		t.Errorf("Survivors = %v, %v; want none and an error naming the plugin", list, err)
	}
	waitPlugin(ctx, t, p, "silent", "restart", func(st core.PluginStatus) bool { return running(st) && st.PID != old })
	if alive(old) {
		t.Errorf("the silent plugin %d is still running", old)
	}
}
