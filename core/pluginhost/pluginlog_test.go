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
