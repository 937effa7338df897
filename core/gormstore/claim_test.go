package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/proc"
)

// claimEnv is one claim case's world: a database of its own that several
// servers open, and their shared clock.
type claimEnv struct {
	dsn string
	clk *clock
}

// TestClaim runs every claim case against every backend.
func TestClaim(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e claimEnv)
	}{
		{"RefusedWhileOwned", testClaimRefused},
		{"TakeoverAfterTTL", testClaimTakeoverAfterTTL},
		{"TakeoverDeadPIDSameHost", testClaimTakeoverDeadPID},
		{"Release", testClaimRelease},
		{"Lost", testClaimLost},
		{"ConcurrentClaimsOneWins", testClaimConcurrent},
		{"WritesFencedAfterTakeover", testClaimFencedAfterTakeover},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, claimEnv{dsn: b.freshDSN(t), clk: newClock()})
				})
			}
		})
	}
}

// server opens the database as a server does, its heartbeat every
// renewal, and closes it when the test ends.
func (e claimEnv) server(t *testing.T, renewal time.Duration) *gormstore.DB {
	t.Helper()
	return openWith(t, e.dsn, gormstore.Options{Now: e.clk.Now, LeaseRenewal: renewal})
}

// mustClaim claims s for o and releases the claim when the test ends.
func mustClaim(t *testing.T, s *gormstore.DB, o gormstore.Owner) *gormstore.Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), o)
	if err != nil {
		t.Fatalf("Claim(%+v): %v", o, err)
	}
	t.Cleanup(func() {
		if err := c.Release(context.Background()); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
	return c
}

// refused checks that s's claim for o is refused, naming want's owner.
func refused(t *testing.T, s *gormstore.DB, o gormstore.Owner, owner gormstore.Owner) {
	t.Helper()
	c, err := s.Claim(context.Background(), o)
	if err == nil {
		_ = c.Release(context.Background())
		t.Fatalf("Claim(%+v) succeeded while %s owns the database", o, owner.DataDir)
	}
	if !errors.Is(err, gormstore.ErrOwned) {
		t.Fatalf("Claim: %v, want ErrOwned", err)
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{owner.Hostname, fmt.Sprintf("pid %d", owner.PID), owner.DataDir, "stop the other server", "15s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
}

// ownerRow is server_owner's row as the tests read it.
type ownerRow struct {
	NodeID      string
	DataDir     string
	HeartbeatAt time.Time
}

func readOwner(t *testing.T, s *gormstore.DB) (ownerRow, bool) {
	t.Helper()
	var rows []ownerRow
	if err := s.Gorm().Table("server_owner").Find(&rows).Error; err != nil {
		t.Fatalf("reading server_owner: %v", err)
	}
	if len(rows) > 1 {
		t.Fatalf("server_owner holds %d rows", len(rows))
	}
	if len(rows) == 0 {
		return ownerRow{}, false
	}
	return rows[0], true
}

// poll waits, polling, until cond holds, and fails the test if it does
// not within 5 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testClaimRefused(t *testing.T, e claimEnv) {
	a := e.server(t, time.Hour)
	ca := mustClaim(t, a, gormstore.Owner{DataDir: "/srv/a"})
	host, _ := os.Hostname()
	o := ca.Owner()
	if o.Hostname != host || o.PID != os.Getpid() || o.NodeID == "" || !o.StartedAt.Equal(kept(e.clk.Now())) {
		t.Errorf("Owner() = %+v, want this host and process, a node id, started now", o)
	}
	e.clk.Advance(14 * time.Second) // within the lease
	b := e.server(t, time.Hour)
	refused(t, b, gormstore.Owner{DataDir: "/srv/b"}, o)
	if row, _ := readOwner(t, b); row.NodeID != o.NodeID {
		t.Errorf("the refused claim changed the owner: %+v", row)
	}
	// The owner claiming again is no conflict.
	mustClaim(t, a, gormstore.Owner{DataDir: "/srv/a", NodeID: o.NodeID})
	select {
	case <-ca.Lost():
		t.Error("a claim was lost while its server owns the database")
	default:
	}
}

func testClaimTakeoverAfterTTL(t *testing.T, e claimEnv) {
	a := e.server(t, time.Hour) // never beats within the test: a hung server
	ca := mustClaim(t, a, gormstore.Owner{DataDir: "/srv/a"})
	e.clk.Advance(16 * time.Second)
	b := e.server(t, time.Hour)
	cb := mustClaim(t, b, gormstore.Owner{DataDir: "/srv/b"})
	if row, _ := readOwner(t, b); row.NodeID != cb.Owner().NodeID || row.DataDir != "/srv/b" {
		t.Errorf("owner row %+v, want b's", row)
	}
	// The server taken over releasing its claim leaves the new owner's.
	if err := ca.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := e.server(t, time.Hour)
	refused(t, c, gormstore.Owner{DataDir: "/srv/c"}, cb.Owner())
}

func testClaimTakeoverDeadPID(t *testing.T, e claimEnv) {
	dead := deadPID(t)
	a := e.server(t, time.Hour)
	mustClaim(t, a, gormstore.Owner{DataDir: "/srv/killed", PID: dead})
	// On this machine, a gone process is taken over at once.
	b := e.server(t, time.Hour)
	cb := mustClaim(t, b, gormstore.Owner{DataDir: "/srv/b"})
	if err := cb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	// So is a killed server its parent has not reaped yet (a zombie).
	mustClaim(t, a, gormstore.Owner{DataDir: "/srv/unreaped", PID: zombiePID(t)})
	cb = mustClaim(t, b, gormstore.Owner{DataDir: "/srv/b"})
	if err := cb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	// On another machine, the process cannot be checked: the lease holds.
	elsewhere := gormstore.Owner{DataDir: "/srv/remote", Hostname: "elsewhere.example", PID: dead}
	ce := mustClaim(t, a, elsewhere)
	refused(t, b, gormstore.Owner{DataDir: "/srv/b"}, elsewhere)
	if err := ce.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Nor in another pid namespace under this machine's name (a container
	// on the host's network): its pids are not ours.
	container := gormstore.Owner{DataDir: "/srv/container", PID: dead, Instance: "another-boot/pid:[4026531836]"}
	mustClaim(t, a, container)
	refused(t, b, gormstore.Owner{DataDir: "/srv/b"}, container)
}

// zombiePID returns the id of a process that has exited and is not reaped
// until the test ends.
func zombiePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("running a child: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !proc.Zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the child never became a zombie")
		}
		time.Sleep(5 * time.Millisecond) // /proc: nothing to wait on
	}
	return cmd.Process.Pid
}

// deadPID returns the id of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	prog, args := os.Args[0], []string{"-test.run=^$"}
	if p, err := exec.LookPath("true"); err == nil {
		prog, args = p, nil // quicker than this test binary
	}
	cmd := exec.Command(prog, args...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("running a child: %v", err)
	}
	return cmd.Process.Pid
}

func testClaimRelease(t *testing.T, e claimEnv) {
	a := e.server(t, time.Hour)
	ca, err := a.Claim(context.Background(), gormstore.Owner{DataDir: "/srv/a"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ca.Release(context.Background()); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if row, ok := readOwner(t, a); ok {
		t.Errorf("owner row %+v left after Release", row)
	}
	// The next server claims at once.
	b := e.server(t, time.Hour)
	mustClaim(t, b, gormstore.Owner{DataDir: "/srv/b"})
	select {
	case <-ca.Lost():
		t.Error("a released claim reports itself lost")
	default:
	}
}

func testClaimLost(t *testing.T, e claimEnv) {
	a := e.server(t, 20*time.Millisecond)
	ca := mustClaim(t, a, gormstore.Owner{DataDir: "/srv/a"})
	// The heartbeat keeps the row fresh.
	now := e.clk.Advance(time.Minute)
	poll(t, "a heartbeat", func() bool {
		row, ok := readOwner(t, a)
		return ok && row.HeartbeatAt.Equal(now)
	})
	select {
	case <-ca.Lost():
		t.Fatal("lost while owning the database")
	default:
	}
	// Another server takes the row over (this one missed its lease).
	if err := a.Gorm().Exec("UPDATE server_owner SET node_id = ?", "intruder").Error; err != nil {
		t.Fatal(err)
	}
	select {
	case <-ca.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("the claim was not reported lost")
	}
	if err := ca.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if row, ok := readOwner(t, a); !ok || row.NodeID != "intruder" {
		t.Errorf("Release of a lost claim touched the new owner's row: %+v, %v", row, ok)
	}
}

func testClaimConcurrent(t *testing.T, e claimEnv) {
	const n = 5
	stores := make([]*gormstore.DB, n)
	for i := range stores {
		stores[i] = e.server(t, time.Hour)
	}
	errs := make(chan error, n)
	claims := make(chan *gormstore.Claim, n)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			c, err := s.Claim(context.Background(), gormstore.Owner{DataDir: fmt.Sprintf("/srv/%d", i)})
			if err == nil {
				claims <- c
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	close(claims)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, gormstore.ErrOwned):
			t.Errorf("a losing claim failed otherwise: %v", err)
		}
	}
	for c := range claims {
		if err := c.Release(context.Background()); err != nil {
			t.Error(err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won, want 1", won)
	}
}
