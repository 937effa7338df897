package gormstore

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// A cluster and a single server (Claim) exclude each other on one
// database: a single server takes up every live session of the store, the
// other nodes' too. Both check for the other under one PostgreSQL
// advisory lock (lockNodesAndClaim).

// advisoryLockKey names the PostgreSQL advisory lock under which node
// registrations and single-server claims check for each other ("ptyhost").
const advisoryLockKey = 0x70747968_6f7374

// lockNodesAndClaim takes the advisory lock for the rest of tx.
func lockNodesAndClaim(tx *gorm.DB) error {
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", int64(advisoryLockKey)).Error
}

// refuseClaimed returns an error wrapping ErrOwned if a single server's
// claim on the database is live, judged as Claim judges it.
func (s *DB) refuseClaimed(tx *gorm.DB) error {
	var cur ownerModel
	err := tx.Where("slot = ?", ownerSlot).Take(&cur).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	me, err := s.completeOwner(Owner{})
	if err != nil {
		return err
	}
	now := s.stamp()
	if s.gone(cur, me, now) {
		return nil
	}
	return fmt.Errorf("%w: a single ptyhost server (on %s, pid %d, data dir %q) owns it, last seen %v ago, "+
		"and would take the nodes' sessions up: stop it, or run it as a node too (--node-name)",
		ErrOwned, cur.Hostname, cur.PID, cur.DataDir, now.Sub(cur.HeartbeatAt).Round(time.Millisecond))
}

// refuseNodes returns an error wrapping ErrOwned if a node of a cluster
// runs (holds a live lease it has not released): a single server would
// take its sessions up.
func refuseNodes(tx *gorm.DB) error {
	var live []nodeModel
	if err := tx.Where("lease_expires_at > now() AND NOT released").Order("name").Limit(1).Find(&live).Error; err != nil {
		return err
	}
	if len(live) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the nodes of a cluster share it (node %s runs at %s), and a single server would take their sessions up: "+
		"start this server as a node (--node-name, --advertise-url, --cluster-secret), or on a database of its own",
		ErrOwned, live[0].Name, live[0].URL)
}
