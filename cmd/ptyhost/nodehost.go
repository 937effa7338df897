package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ptyhost/ptyhost/core"
)

// nodeHostID is the id of node name's own HOST environment: a session
// created in it runs on that node's machine, whichever node's API
// creates it. The shared 'host' environment is the first node's machine.
func nodeHostID(name string) string { return "host-" + name }

// ensureNodeHost makes sure a node of a cluster has its own HOST
// environment, host-NAME, served by itself alone (core.Environment.Node).
// A single server has none: its 'host' is its machine. An environment of
// that id that already exists is left as it is, with a warning if it is
// not this node's HOST environment (someone made it by hand).
func ensureNodeHost(ctx context.Context, m *core.Manager, log *slog.Logger) error {
	name := m.NodeName()
	if name == "" {
		return nil
	}
	env, err := m.EnsureEnvironment(ctx, core.Environment{
		ID: nodeHostID(name), Name: "Node " + name + "'s machine", Type: "HOST", Node: name,
	})
	if err != nil {
		return err
	}
	if env.Type != "HOST" || env.Node != name {
		log.Warn("environment "+env.ID+" exists and is not this node's machine: sessions created in it may run elsewhere",
			"environment_id", env.ID, "type", env.Type, "node", env.Node)
	}
	return nil
}

// nameList is a repeatable flag of names, each value comma-separated
// (env add --nodes a,b --nodes c); an empty value adds none, so that
// --nodes "" clears the list.
type nameList []string

func (l *nameList) String() string { return strings.Join(*l, ",") }

func (l *nameList) Set(v string) error {
	for name := range strings.SplitSeq(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*l = append(*l, name)
		}
	}
	return nil
}
