package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Orphans
//
// Every container the plugin creates is labelled with its session, its
// environment and its owner: the plugin process that created it (ownerID).
// A plugin removes its containers itself when sessions end, and when the
// host stops it (shared.Serve closes every session). A plugin that crashed,
// or was killed, cannot: its containers keep running, and nothing in the
// host knows their sessions any more (the host marks them ERROR,
// plugin_crashed, and a restarted host has no live session at all).
//
// So each plugin, when it starts and on its first contact with each other
// daemon, lists the labelled containers and removes those whose owner is a
// plugin process that no longer runs on this machine, logging each. A
// container whose owner ran on another machine is left alone: that
// machine's plugin will clean up. A container kept by "remove": false is
// only killed if it still runs.
//
// Only what is provably this machine's is checked: a process is looked up
// in this machine's /proc, and a pid of another machine means nothing
// here. Two machines sharing a daemon may have one hostname, so the owner
// carries the kernel's boot id too (random at every boot), and an owner
// is this machine's only when both match. An owner from another boot of
// this machine (before a reboot) cannot be told from another machine's of
// the same name: it is left alone and logged, for removal by hand. So is
// a container without an owner, or with one an older plugin wrote
// (hostname/pid/start, no boot id), whose hostname alone proves nothing.
// A limit remains: two servers on one kernel with one hostname but in
// different PID namespaces (containers given the same hostname) look like
// one machine, as they did before.
//
// A container whose owner still runs on this machine belongs to a live
// session of another plugin process: another ptyhost server sharing the
// daemon, a test, or a plugin whose server went away and that keeps its
// sessions for the next server until its orphan timeout (after which it
// removes them itself). So the plugin watches those owners for ownerWatch
// after the sweep, checking every ownerRecheck, and sweeps the containers
// of each owner that ends (running or exited) as above. An owner alive
// after ownerWatch is a live plugin, and its containers its own business
// (if it is later killed before removing them, the next plugin to start
// sweeps them).

// machine tells the machine a plugin process runs on from another that
// shares the daemon: its hostname, and its kernel's boot id ("" where the
// system has none, and then nothing is provably this machine's).
type machine struct{ host, boot string }

// thisMachine returns the machine this process runs on.
func thisMachine() machine {
	host, _ := os.Hostname()
	return machine{host: host, boot: bootID()}
}

// ownerID identifies the plugin process pid of m among those that may
// share a daemon: "hostname/pid/start/boot", start being the process's
// start time in clock ticks since boot (so a reused pid is a different
// owner) and boot the kernel's boot id.
func (m machine) ownerID(pid int) string {
	return fmt.Sprintf("%s/%d/%s/%s", m.host, pid, procStart(pid), m.boot)
}

// ownerGone reports whether the plugin process owner (an ownerID) has
// ended. known is false when nobody here can tell: the owner ran on
// another machine, or on a machine of the same name that may be another
// (another boot id, or none: an older plugin's label), or the label is not
// an ownerID.
func (m machine) ownerGone(owner string) (gone, known bool) {
	parts := strings.Split(owner, "/")
	if len(parts) != 4 || m.boot == "" || parts[0] != m.host || parts[3] != m.boot {
		return false, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return false, false
	}
	return pidGone(pid, parts[2])
}

// namesake reports whether owner, which ownerGone cannot tell, has m's
// hostname: then it may be this machine's (before a reboot, or an older
// plugin's) or that of another machine of the same name.
func (m machine) namesake(owner string) bool {
	host, _, _ := strings.Cut(owner, "/")
	return owner != "" && host == m.host
}

// procStart returns the start time of process pid from /proc, or "" where
// there is no /proc or no such process.
func procStart(pid int) string {
	s, _ := readProcStart(pid)
	return s
}

// readProcStart is procStart with the error of reading /proc/PID/stat:
// one wrapping fs.ErrNotExist when there is no such process (or no /proc).
func readProcStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name may hold spaces and parentheses: fields follow the
	// last ')'. starttime is field 22, the 20th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", nil
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", nil
	}
	return f[19], nil
}

// pidGone reports whether the process pid that started at start (a
// procStart) on this machine has ended. known is false when that cannot
// be told: a pid that is not one, or /proc that could not be read for
// another reason than the process being gone (too many open files, say).
func pidGone(pid int, start string) (gone, known bool) {
	if pid <= 0 {
		return false, false
	}
	now, err := readProcStart(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
		if _, err := os.Stat("/proc/self/stat"); err != nil {
			return !processExists(pid), true // no /proc: by pid alone
		}
		return true, true
	case err != nil || now == "":
		return false, false
	}
	return now != start, true
}

// processExists reports whether a process with that pid exists.
func processExists(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	// Signal 0 checks that the process exists.
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, os.ErrPermission)
}

const (
	// ownerRecheck is how often the owners of containers left at a sweep
	// are checked again.
	ownerRecheck = 500 * time.Millisecond
	// ownerWatch is how long they are watched: much longer than a plugin
	// takes to stop its sessions and exit when it is stopped or its
	// orphan timeout ends while watched.
	ownerWatch = 2 * time.Minute
)

// ReapOrphans removes the containers on host's daemon ("" is the default
// one) left by plugin processes that are gone (see above), logging each,
// and watches the live owners of the others for a while. It gives up
// quietly, to retry on the next contact, when the daemon does not answer
// within ctx.
func (e *Docker) ReapOrphans(ctx context.Context, host string) {
	e.reapMu.Lock()
	defer e.reapMu.Unlock()
	if e.reaped[host] {
		return
	}
	d, err := e.daemons.get(host)
	if err != nil {
		e.logger.Warn("cannot clean up orphaned containers", "host", host, "error", err)
		return
	}
	list, err := d.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", labelSession),
	})
	if err != nil {
		e.logger.Info("docker daemon not reachable: orphaned containers are cleaned up on first contact", "host", d.api.DaemonHost(), "error", err)
		return
	}
	e.reaped[host] = true
	live := map[string]bool{}
	for _, c := range list.Items {
		owner := c.Labels[labelOwner]
		if owner == e.owner {
			continue
		}
		gone, known := e.machine.ownerGone(owner)
		switch {
		case !known:
			// Not provably this machine's: never removed on a guess.
			if owner == "" || e.machine.namesake(owner) {
				e.logger.Info("leaving a session container alone: its owner label does not prove that its plugin process ran on this machine (it may be another machine's of the same name, this machine's before a reboot, or an older plugin's); remove it by hand if no plugin uses it",
					"container", shortID(c.ID), "session_id", c.Labels[labelSession], "state", c.State, "owner", owner)
			}
			continue
		case !gone:
			live[owner] = true
			continue
		}
		e.reap(ctx, d, c)
	}
	if len(live) > 0 {
		e.watchOwners(d, live)
	}
}

// reap removes an orphaned container, or kills it if it is kept.
func (e *Docker) reap(ctx context.Context, d *daemon, c container.Summary) {
	log := e.logger.With("container", shortID(c.ID), "session_id", c.Labels[labelSession],
		"environment_id", c.Labels[labelEnvironment], "state", c.State, "owner", c.Labels[labelOwner])
	if c.Labels[labelKeep] == "true" {
		if c.State == "running" {
			log.Warn("killing an orphaned session container (kept: remove is false)")
			if _, err := d.api.ContainerKill(ctx, c.ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !cerrdefs.IsConflict(err) {
				log.Warn("killing the orphaned container failed", "error", err)
			}
		}
		return
	}
	log.Warn("removing an orphaned session container: its plugin process is gone")
	if _, err := d.api.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		log.Warn("removing the orphaned container failed", "error", err)
	}
}

// watchOwners checks the plugin processes owners every ownerRecheck, for
// up to ownerWatch, and reaps the containers of each that ends. It stops
// when the Docker is closed.
func (e *Docker) watchOwners(d *daemon, owners map[string]bool) {
	e.watchers.Go(func() {
		deadline := time.NewTimer(ownerWatch)
		defer deadline.Stop()
		tick := time.NewTicker(ownerRecheck)
		defer tick.Stop()
		for len(owners) > 0 {
			select {
			case <-e.ctx.Done():
				return
			case <-deadline.C:
				e.logger.Debug("plugin processes still running: their containers are theirs", "owners", len(owners))
				return
			case <-tick.C:
			}
			for owner := range owners {
				if gone, _ := e.machine.ownerGone(owner); gone {
					delete(owners, owner)
					e.reapOwner(d, owner)
				}
			}
		}
	})
}

// reapOwner reaps every container of owner, a plugin process that ended.
// A daemon that does not answer leaves them to the next plugin's sweep.
func (e *Docker) reapOwner(d *daemon, owner string) {
	ctx, cancel := context.WithTimeout(e.ctx, cleanupTimeout)
	defer cancel()
	list, err := d.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", labelOwner+"="+owner),
	})
	if err != nil {
		e.logger.Info("cannot list the containers of a plugin process that ended", "owner", owner, "error", err)
		return
	}
	for _, c := range list.Items {
		e.reap(ctx, d, c)
	}
}
