package pluginhost

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/internal/pluginlog"
)

// The log of a plugin process that outlived its server. Its stderr was a
// pipe to the server that started it; once that server is gone, the
// plugin writes its log to a file in the socket directory
// (internal/pluginlog), which the server that reattaches to it relays
// (followLog), and the one that finds it exited relays to its end and
// removes (drainExitedLogs).

// logFollowInterval is how often a server relays what a plugin process
// it reattached to logged.
const logFollowInterval = time.Second

// followLog relays the log file of the reattached process pid into log
// until life ends. A process that exited (exited is closed) has its file
// relayed to its end and removed; one let go is left to the next server,
// which relays on from where this one left off.
func followLog(life context.Context, dir string, pid int, exited <-chan struct{}, log hclog.Logger) {
	pluginlog.Follow(life, dir, pid, logFollowInterval, relayLine(log))
	select {
	case <-exited:
		pluginlog.Drain(dir, pid, relayLine(log))
	default:
	}
}

// relayLine returns a function that logs a line of a plugin's log file as
// the plugin logged it, with the time it did (logged_at).
func relayLine(log hclog.Logger) func([]byte) {
	return func(line []byte) {
		level, msg, args := pluginlog.Parse(line)
		log.Log(level, msg, args...)
	}
}

// drainExitedLogs relays the log files of plugin processes that exited
// while no server ran (their orphan timeout ran out, or they crashed),
// which nobody can reattach to any more, and removes them, each line
// under the plugin's name when its reattach record gave it (the file
// does not). The files of processes that run are left: followed if this
// server reattached to them, else for the server that does.
func (p *Plugins) drainExitedLogs() {
	for _, pid := range pluginlog.Leftovers(p.sock.path) {
		if processAlive(pid) {
			continue
		}
		log := p.log
		if name, ok := p.sock.exited[pid]; ok {
			log = log.With("plugin", name)
		}
		log.Info("a plugin process exited while no server ran; relaying what it logged", "pid", pid)
		drainLog(p.sock.path, pid, log)
	}
}

// drainLog relays the log file of the exited plugin process pid into log
// and removes it.
func drainLog(dir string, pid int, log *slog.Logger) {
	pluginlog.Drain(dir, pid, relayLine(newHCLogger(log.With("pid", pid), "").Named("exited")))
}
