package gormstore

import (
	"os"
	"time"

	"gorm.io/gorm"
)

// Taking over the row of a node killed on this machine. A node whose
// process was killed (SIGKILL, the OOM killer, a crash) leaves its lease
// live until it expires, and its supervisor restarts it at once (systemd
// within 100 ms, giving up after 5 failed starts in 10 s): refused until
// that lease expires, the restarted node would stay down. So each row
// records the process that holds it (its hostname, pid, and the machine's
// boot and pid namespace, as a single server's claim does: Owner), and a
// process registering under the name takes a live lease over at once when
// those say its holder ran on this machine, in this boot and pid
// namespace, and that process no longer exists (goneHolder). Anything
// else waits for the lease, as before: a holder on another machine or in
// another pid namespace (a container of its own) cannot be checked, and a
// holder whose pid answers, be it stopped (SIGSTOP) or a new process
// under its old pid, may be the node itself.
//
// The row records its process only for the instance that wrote it
// (nodeModel.ProcessInstance), as it does the fingerprint: a ptyhost from
// before these columns that takes a row over leaves the last holder's in
// place, and those describe a process that no longer holds the row. A row
// without them, or with another instance's, is of a holder that cannot be
// told gone.
//
// Taking a live lease over is a restart within the lease: the other nodes
// sweep only expired leases (MarkLostNodes), so the sessions of the node
// killed are still recorded as it left them, and the node restarted takes
// them up as after a clean stop (core's Reconcile). The decision is made
// under the row's lock, which the registration takes as it reads the row
// (after the nodes' advisory lock, as its upsert took it before) and which
// a sweep of the row holds while it marks the node's sessions. A sweep
// that found the lease expired by its own clock, a moment before the
// registration's, commits its marks before the row is read, and the node
// restarted reclaims them (ReclaimSession), as one restarted after its
// lease expired does; a sweep after finds the lease renewed, or skips the
// row while it is locked. The holder's process being gone, nothing of it
// renews the row or writes under its instance again.

// nodeHolder is the process that holds a node's row, as goneHolder reads
// it.
type nodeHolder struct {
	Instance        string    `gorm:"column:instance"`
	URL             string    `gorm:"column:url"`
	Hostname        string    `gorm:"column:hostname"`
	PID             int       `gorm:"column:pid"`
	HostInstance    string    `gorm:"column:host_instance"`
	ProcessInstance string    `gorm:"column:process_instance"`
	StartedAt       time.Time `gorm:"column:started_at"`
	// Live says its lease is live and unreleased; LeaseLeft is how long
	// it had to run, in seconds.
	Live      bool    `gorm:"column:live"`
	LeaseLeft float64 `gorm:"column:lease_left"`
}

// completeProcess fills in o's process, as completeOwner fills in an
// Owner's. A hostname that cannot be read stays empty: the boot and pid
// namespace still tell the machine.
func (o *NodeOptions) completeProcess() {
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.HostInstance == "" {
		o.HostInstance = localInstance()
	}
}

// goneHolder locks the row of node o.Name for the rest of tx, and returns
// its holder if o may take it over because that process is gone: its
// lease is live and unreleased (else the row is free anyway), its
// instance is not o's, and the row says, in the columns its instance
// wrote, that it ran on o's machine (same hostname), in o's boot and pid
// namespace (same HostInstance, known), under a pid that no longer
// exists. It returns nil otherwise, and when there is no row.
func goneHolder(tx *gorm.DB, o NodeOptions) (*nodeHolder, error) {
	var rows []nodeHolder
	err := tx.Raw(`SELECT instance, url, hostname, pid, host_instance, process_instance, started_at,
			lease_expires_at > now() AND NOT released AS live,
			extract(epoch FROM lease_expires_at - now()) AS lease_left
		FROM nodes WHERE name = ? FOR UPDATE`, o.Name).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	h := rows[0]
	if !h.Live || h.Instance == o.Instance || h.ProcessInstance != h.Instance {
		return nil, nil
	}
	if !goneHere(h.Hostname, h.HostInstance, h.PID, o.Hostname, o.HostInstance) {
		return nil, nil
	}
	return &h, nil
}

// logTakeover logs that o took the row over from prev, a process that is
// gone, before its lease expired.
func (s *DB) logTakeover(o NodeOptions, prev *nodeHolder) {
	s.log.Warn("took the node's registration over from a process of this machine that is gone, before its lease expired",
		"component", "store", "node", o.Name, "host", prev.Hostname, "pid", prev.PID, "url", prev.URL,
		"started_at", prev.StartedAt.Format(time.RFC3339),
		"lease_left", (time.Duration(prev.LeaseLeft * float64(time.Second))).Round(time.Millisecond))
}
