package api

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ptyhost/ptyhost/core"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	api := newAPI(t, Options{WriteTimeout: 300 * time.Millisecond}, func(o *core.Options) {
		o.Registerer = reg
		o.ScrollbackBytes = 64 << 10
	})
	_, p := api.create(t, "m1")
	api.create(t, "m2")
	if _, err := api.m.CreateSession(t.Context(), core.CreateOptions{ID: "bad", EnvironmentID: "nope"}); err == nil {
		t.Fatal("create in an unknown environment succeeded")
	}
	a, err := api.m.Attach(t.Context(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p.Output(t, []byte("hello"))
	for got, buf := 0, make([]byte, 64); got < 5; {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		f, err := a.Next(ctx, buf)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("after %d of 5 output bytes: %v", got, err)
		case f.Kind == core.FrameOutput:
			got += len(f.Data)
		case f.Kind != core.FrameResize:
			t.Fatalf("after %d output bytes: unexpected frame %+v", got, f)
		}
	}
	a.Write([]byte("ls\r"))
	<-p.Input()

	want := `
# HELP ptyhost_sessions Sessions in memory (running, or exited and lingering), by environment type and status.
# TYPE ptyhost_sessions gauge
ptyhost_sessions{status="ACTIVE",type="FAKE"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ptyhost_sessions"); err != nil {
		t.Error(err)
	}
	for name, want := range map[string]float64{
		"ptyhost_sessions_created_total":       2,
		"ptyhost_sessions_create_failed_total": 1,
		"ptyhost_output_bytes_total":           5,
		"ptyhost_input_bytes_total":            3,
		"ptyhost_clients_attached":             1,
		"ptyhost_sessions_live":                2,
	} {
		if got := gathered(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// A WebSocket client that reads nothing is dropped after WriteTimeout.
	// Its socket's receive buffer is kept small, so the server's writes
	// block soon.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	stalled, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(api.srv.URL, "http")+"/api/v1/sessions/m2/attach",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	p2 := api.env.Last(t)
	chunk := bytes.Repeat([]byte("y"), 32<<10)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Output until the socket buffers are full and the write times out.
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := p2.WriteOutput(chunk); err != nil {
				return
			}
		}
	}()
	eventually(t, "the stalled client to be dropped", func() bool {
		return gathered(t, reg, "ptyhost_client_drops_total") == 1
	})
	// The store writer records its latency as its writes land.
	eventually(t, "the store latency histogram", func() bool {
		return testutil.CollectAndCount(reg, "ptyhost_store_write_seconds") == 1
	})
}

// gathered returns the value of an unlabelled counter or gauge.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
