package main

import (
	"fmt"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// eventRelay is core.Options.Relay: for a node of a cluster, the relay
// that carries the sessions' events between the nodes over PostgreSQL
// LISTEN/NOTIFY (core/gormstore's Relay); nil for a single server, whose
// events stay its own.
func (c serveConfig) eventRelay(db *gormstore.DB) (core.EventRelay, error) {
	if !c.cluster.enabled() {
		return nil, nil
	}
	r, err := db.NewRelay(c.cluster.nodeName)
	if err != nil {
		return nil, fmt.Errorf("relaying events between the nodes: %w", err)
	}
	return r, nil
}
