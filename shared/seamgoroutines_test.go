package shared

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// TestRestartsGrowNoGoroutines: host after host connects to one
// plugin server, holds it, takes up its sessions on byte channels, reads
// and writes, and vanishes (its connection closed, not the sessions): the
// process's goroutines do not grow with the hosts.
func TestRestartsGrowNoGoroutines(t *testing.T) {
	ctx := testContext(t)
	srv, ptys := fakeServer()
	lis, err := net.Listen("unix", t.TempDir()+"/plugin.sock")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	proto.RegisterEnvironmentServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	defer func() {
		srv.CloseAll(ctx)
		gs.Stop()
	}()
	const sessions = 4
	var fakes []*fakePTY
	var counts []int
	for gen := range 12 {
		conn, err := grpc.NewClient("unix://"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithCancel(ctx)
		c := NewGRPCClient(pctx, conn)
		if _, err := c.Hold(pctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		for i := range sessions {
			id := fmt.Sprintf("g%d", i)
			var p PTY
			if gen == 0 {
				p, err = c.Spawn(ctx, spawnReq(id))
				fakes = append(fakes, receive(ctx, t, ptys, "spawn"))
			} else {
				p, _, err = c.Attach(ctx, id, 1<<40)
			}
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("gen%d", gen)
			go func() { _, _ = fakes[i].out.Write([]byte(msg)) }()
			got := readN(t, p, len(msg))
			if string(got) != msg {
				t.Fatalf("read %q, want %q", got, msg)
			}
			if _, err := p.Write([]byte("k")); err != nil {
				t.Fatal(err)
			}
			<-fakes[i].inputs
			_ = p.Resize(ctx, Size{Cols: uint16(80 + gen), Rows: 24})
		}
		// The host vanishes.
		conn.Close()
		cancel()
		eventually(t, "the sessions detached", func() bool {
			list, _ := srv.Sessions(ctx, nil)
			for _, k := range list.GetSessions() {
				if k.GetAttached() {
					return false
				}
			}
			return true
		})
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		counts = append(counts, runtime.NumGoroutine())
	}
	t.Logf("goroutines after each host: %v", counts)
	if counts[len(counts)-1] > counts[2]+4 {
		t.Errorf("goroutines grow with the hosts: %v", counts)
	}
}
