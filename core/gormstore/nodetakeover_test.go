package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// hourLease is a node that neither renews nor loses its lease within a
// test: one whose process was killed, its lease still running.
func hourLease(name, url string) gormstore.NodeOptions {
	return gormstore.NodeOptions{Name: name, URL: url, LeaseTTL: time.Hour, Renewal: time.Hour}
}

// nodeInstance returns the instance that holds node's row.
func nodeInstance(t *testing.T, s *gormstore.DB, node string) string {
	t.Helper()
	var inst string
	if err := s.Gorm().Raw("SELECT instance FROM nodes WHERE name = ?", node).Scan(&inst).Error; err != nil {
		t.Fatal(err)
	}
	return inst
}

// TestNodeTakeoverDeadProcess: a node whose process on this machine is
// gone (killed, its lease still running for an hour) is taken over at
// once by the process that registers under its name, which logs a
// warning naming it. Its sessions stay as they were, not node_lost: the
// new process takes them up as after a stop within the lease.
func TestNodeTakeoverDeadProcess(t *testing.T) {
	dsn := postgresFreshDSN(t)
	killed, other := openReal(t, dsn), openReal(t, dsn)
	var log e2etest.Buffer
	restarted := openWith(t, dsn, gormstore.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	ctx := context.Background()
	mustRegister(t, other, hourLease("b", "http://b:7420"))
	dead := deadPID(t)
	o := hourLease("a", "http://a:7420")
	o.PID = dead
	mustRegister(t, killed, o)
	saveSessions(t, other, "a", core.StatusActive, core.StatusIdle)

	l := mustRegister(t, restarted, hourLease("a", "http://a:7421"))
	if got := nodeInstance(t, other, "a"); got != l.Instance() {
		t.Errorf("a's row is held by %q, want the new process's %q", got, l.Instance())
	}
	host, _ := os.Hostname()
	msg := log.String()
	for _, want := range []string{"took the node's registration over from a process of this machine that is gone",
		"node=a", fmt.Sprintf("pid=%d", dead), "host=" + host, "url=http://a:7420", "lease_left=59m"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the log does not say %q:\n%s", want, msg)
		}
	}
	if got, want := listed(t, other), "a http://a:7421 true 2 ; b http://b:7420 true 0 "; got != want {
		t.Errorf("nodes: %s\nwant %s", got, want)
	}
	if marked, err := other.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Errorf("a sweep after the takeover marked %v, %v; want nothing", marked, err)
	}
	for _, id := range []string{"a-0", "a-1"} {
		if got := statusOf(t, other, id); got != "ACTIVE" && got != "IDLE" {
			t.Errorf("%s after the takeover: %s, want it live", id, got)
		}
	}
	// The new process is the row's: a process registering after it is
	// refused, this one being alive.
	if _, err := other.RegisterNode(ctx, hourLease("a", "http://a:7422")); !errors.Is(err, gormstore.ErrNodeRunning) {
		t.Errorf("a third process of a, while the second runs: %v, want ErrNodeRunning", err)
	}
}

// TestNodeTakeoverRefused: a live lease is taken over only when its
// holder provably was a process of this machine that is gone. A live
// process, even a stopped one, keeps its name; so do a process on another
// machine or in another pid namespace, which cannot be checked, and a row
// that does not say which process holds it: one of a ptyhost from before
// these columns, or one such a ptyhost took over from a newer one, which
// leaves that one's process in the row.
func TestNodeTakeoverRefused(t *testing.T) {
	stopped := exec.Command("sleep", "60")
	if err := stopped.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stopped.Process.Kill()
		_ = stopped.Wait()
	})
	if err := stopped.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	dead := deadPID(t)
	tests := []struct {
		name string
		// hold makes s's row of node a, held for an hour.
		hold func(t *testing.T, s *gormstore.DB)
	}{
		{"LiveProcess", func(t *testing.T, s *gormstore.DB) {
			mustRegister(t, s, hourLease("a", "http://a:7420"))
		}},
		{"StoppedProcess", func(t *testing.T, s *gormstore.DB) {
			o := hourLease("a", "http://a:7420")
			o.PID = stopped.Process.Pid
			mustRegister(t, s, o)
		}},
		{"AnotherMachine", func(t *testing.T, s *gormstore.DB) {
			o := hourLease("a", "http://a:7420")
			o.PID, o.Hostname = dead, "elsewhere.example"
			mustRegister(t, s, o)
		}},
		{"AnotherPIDNamespace", func(t *testing.T, s *gormstore.DB) {
			o := hourLease("a", "http://a:7420")
			o.PID, o.HostInstance = dead, "another-boot/pid:[4026531836]"
			mustRegister(t, s, o)
		}},
		{"RowFromBefore", func(t *testing.T, s *gormstore.DB) {
			// The table as an older ptyhost made it, and its row: the
			// next store to open the database adds the columns, which
			// the row has at their defaults then.
			for _, q := range []string{
				`ALTER TABLE nodes DROP COLUMN hostname, DROP COLUMN pid, DROP COLUMN host_instance, DROP COLUMN process_instance`,
				`INSERT INTO nodes (name, url, version, instance, started_at, lease_expires_at, released, ready)
					VALUES ('a', 'http://a:7420', 'v0', 'older-ptyhost', now(), now() + interval '1 hour', false, true)`,
			} {
				if err := s.Gorm().Exec(q).Error; err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"TakenOverByAnOlderPtyhost", func(t *testing.T, s *gormstore.DB) {
			o := hourLease("a", "http://a:7420")
			o.PID = dead
			mustRegister(t, s, o)
			// An older ptyhost's upsert changes the instance and leaves
			// the dead process's columns: they are not its.
			if err := s.Gorm().Exec(`UPDATE nodes SET instance = 'older-ptyhost' WHERE name = 'a'`).Error; err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dsn := postgresFreshDSN(t)
			holder := openReal(t, dsn)
			tc.hold(t, holder)
			s := openReal(t, dsn)
			before := nodeInstance(t, s, "a")
			l, err := s.RegisterNode(context.Background(), hourLease("a", "http://a:7421"))
			if err == nil {
				_ = l.Release(context.Background())
				t.Fatal("RegisterNode took a live lease over")
			}
			if !errors.Is(err, gormstore.ErrNodeRunning) || !strings.Contains(err.Error(), "node a is already running at http://a:7420") {
				t.Errorf("RegisterNode: %v; want ErrNodeRunning naming http://a:7420", err)
			}
			if got := nodeInstance(t, s, "a"); got != before {
				t.Errorf("the refused registration changed the row's instance to %q", got)
			}
		})
	}
}

// TestNodeTakeoverRace: a node killed on this machine, whose lease runs
// out about now, is taken over by one of two processes starting under its
// name while another node sweeps, round after round: whichever way the
// takeover and the sweep fall, one process holds the name, the sessions
// the sweep marked are exactly those it reclaims, and every session ends
// live, none both reclaimed and marked lost after.
func TestNodeTakeoverRace(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a := openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, hourLease("a", "http://a:7420"))
	killed := openReal(t, dsn)
	procs := []*gormstore.DB{openReal(t, dsn), openReal(t, dsn)}
	dead := deadPID(t)
	const rounds, sessions = 30, 8
	for round := range rounds {
		o := hourLease("b", "http://b:7420")
		o.PID = dead
		mustRegister(t, killed, o)
		ids := make([]string, sessions)
		for i := range ids {
			ids[i] = fmt.Sprintf("r%d-%d", round, i)
			rec := core.SessionRecord{ID: ids[i], EnvironmentID: "host", Node: "b", Status: core.StatusActive}
			if err := a.SaveSession(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		// The lease runs out a moment from now, or just did.
		left := time.Duration(round%5-2) * time.Millisecond
		if err := a.Gorm().Exec("UPDATE nodes SET lease_expires_at = now() + ? * interval '1 microsecond' WHERE name = 'b'",
			left.Microseconds()).Error; err != nil {
			t.Fatal(err)
		}

		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			leases    = make([]*gormstore.NodeLease, len(procs))
			reclaimed = make([][]string, len(procs))
			errs      = make([]error, len(procs)+1)
			marked    map[string][]string
		)
		wg.Go(func() {
			<-start
			marked, errs[len(procs)] = a.MarkLostNodes(ctx)
		})
		for p, s := range procs {
			wg.Go(func() {
				<-start
				l, err := s.RegisterNode(ctx, hourLease("b", "http://b:7420"))
				if errors.Is(err, gormstore.ErrNodeRunning) {
					return // the other process took it: this one is alive
				}
				if err != nil {
					errs[p] = err
					return
				}
				leases[p] = l
				// As Reconcile: the sessions found node_lost are taken back.
				reclaimed[p], errs[p] = reclaimLost(ctx, s, ids, "b")
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		checkRaceRound(t, ctx, round, a, ids, leases, reclaimed, marked)
		t.Logf("round %d (lease left %v): the sweep marked %d sessions", round, left, len(marked["b"]))
	}
}
