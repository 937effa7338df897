package pluginhost

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/pluginlog"
)

// The log of a plugin process that exited while no server ran (its
// orphan timeout ran out) is relayed under the plugin's name, which its
// reattach record gave before the sweep removed the record: the file
// holds only the plugin's lines, which name no plugin, and the log said
// only "pid=N logger=exited".
func TestExitedPluginLogNamesPlugin(t *testing.T) {
	dir := t.TempDir()
	pid := deadPID(t)
	if err := writeRecord(recordPath(dir, "tmux"), &reattachRecord{PID: pid, Network: "unix", Addr: dir + "/plugin1", ProtocolVersion: 1,
		ClientCert: "x", ClientKey: "x", ServerCert: "x"}); err != nil {
		t.Fatal(err)
	}
	line := `{"@level":"warn","@message":"no host came back within the orphan timeout; hanging every session up and exiting","@timestamp":"2026-12-08T00:30:00.000000Z"}` + "\n"
	if err := os.WriteFile(pluginlog.File(dir, pid), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}

	var logged bytes.Buffer
	p := &Plugins{log: slog.New(slog.NewTextHandler(&logged, nil)), sock: &socketDir{path: dir, exited: sweepSockets(dir)}}
	p.drainExitedLogs()

	var relayed string
	for l := range strings.Lines(logged.String()) {
		if strings.Contains(l, "no host came back") {
			relayed = l
		}
	}
	if relayed == "" {
		t.Fatalf("the plugin's line was not relayed:\n%s", logged.String())
	}
	if !strings.Contains(relayed, "plugin=tmux") {
		t.Errorf("the relayed line does not name the plugin: %s", relayed)
	}
	if _, err := os.Stat(pluginlog.File(dir, pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log file is still there (%v)", err)
	}
}

// Shutdown returns once the log of a reattached plugin it stopped is
// relayed to its end and its file removed: the relay is one of the
// Plugins' goroutines. Left behind, a server that exited first left the
// file to the next one, which took it for the log of a plugin that
// exited while no server ran.
func TestShutdownWaitsForTheLogRelay(t *testing.T) {
	ctx := pluginsContext(t)
	opts := durableOptions(t)
	p, old := reattached(ctx, t, opts)
	// Written after the reattach's first relay, as the plugin writes
	// while a server follows its file: what the relay has left to do when
	// the process exits (a relay of many lines takes a while).
	path := pluginlog.File(opts.SocketDir, old)
	line := `{"@level":"debug","@message":"a line the plugin logged"}` + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, 20000)), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Shutdown(ctx)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Shutdown returned with the stopped plugin's log file still there (%v): its relay was not waited for", err)
	}
}
