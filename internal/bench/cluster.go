package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
)

// The cluster path (issue 14): two nodes of one cluster on the PostgreSQL
// that scripts/bench.sh starts, each with its own data directory and port.
// A session runs on node b; one client attaches to it on b itself, the
// other through node a, which proxies the WebSocket to b. The difference
// is what attaching anywhere costs.

// proxiedEchoExtra is issue 14's target: what the proxy may add to the
// echo's p50 over a direct attach.
const proxiedEchoExtra = 150 * time.Microsecond

// clusterSecret is the bench cluster's secret (its nodes are on loopback
// and live as long as the bench).
const clusterSecret = "ptyhost-bench-cluster-secret"

// clusterResults are the cluster path's runs; Skipped or Failed says why
// there are none.
type clusterResults struct {
	Skipped      string        `json:"skipped,omitempty"`
	Failed       string        `json:"failed,omitempty"`
	Direct       []echoResult  `json:"direct_attach_echo_runs"`
	Proxied      []echoResult  `json:"proxied_echo_runs"`
	DirectFlood  []floodResult `json:"direct_attach_flood_runs"`
	ProxiedFlood []floodResult `json:"proxied_flood_runs"`
}

// clusterNodes are the two nodes, stopped by stop.
type clusterNodes struct {
	a, b *server
	// viaA is b with its clients attaching through a.
	viaA *server
	stop func()
}

// startCluster starts nodes a and b on a schema of their own in the
// database dsn (dropped by stop).
func startCluster(ctx context.Context, bin, tmp, dsn string, stderr io.Writer) (*clusterNodes, error) {
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := "ptyhost_bench_" + hex.EncodeToString(rnd[:])
	admin, err := gormstore.Open(ctx, dsn, gormstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dsn, err)
	}
	if err := admin.Gorm().Exec("CREATE SCHEMA " + schema).Error; err != nil {
		admin.Close()
		return nil, err
	}
	var started []*server
	stop := func() {
		for _, s := range started {
			_ = s.stop()
		}
		admin.Gorm().Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	}
	u, err := url.Parse(dsn)
	if err != nil {
		stop()
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, err
		}
		addr := ln.Addr().String()
		ln.Close()
		s, err := startServer(ctx, bin, mkdir(tmp, "node-"+name), "", stderr,
			"--db", u.String(), "--listen", addr, "--node-name", name,
			"--advertise-url", "http://"+addr, "--cluster-secret", clusterSecret)
		if err != nil {
			stop()
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		started = append(started, s)
	}
	a, b := started[0], started[1]
	via := *b
	via.via = a
	return &clusterNodes{a: a, b: b, viaA: &via, stop: stop}, nil
}

// clusterPath measures the cluster path runs times, each round direct and
// proxied in turn, into r.Cluster.
func (b *bench) clusterPath(ctx context.Context, bin, tmp string, stderr io.Writer, r *results) {
	res := &clusterResults{}
	r.Cluster = res
	dsn := os.Getenv("PTYHOST_TEST_POSTGRES_DSN")
	switch {
	case os.Getenv("PTYHOST_BENCH_SKIP_POSTGRES") != "":
		res.Skipped = os.Getenv("PTYHOST_BENCH_SKIP_POSTGRES")
		return
	case dsn == "":
		res.Skipped = "PTYHOST_TEST_POSTGRES_DSN is not set (scripts/bench.sh starts PostgreSQL)"
		return
	}
	b.log("cluster: starting nodes a and b on PostgreSQL")
	nodes, err := startCluster(ctx, bin, tmp, dsn, stderr)
	if err != nil {
		res.Failed = err.Error()
		return
	}
	defer nodes.stop()
	// b's own HOST environment, which b serves: its sessions run there.
	at := b.host
	at.env = "host-b"
	n := b.c.remoteBytes
	for i := range b.c.runs {
		for _, x := range []struct {
			name  string
			s     *server
			echo  *[]echoResult
			flood *[]floodResult
		}{
			{"attached on b", nodes.b, &res.Direct, &res.DirectFlood},
			{"attached through a", nodes.viaA, &res.Proxied, &res.ProxiedFlood},
		} {
			b.log("run %d/%d: cluster, %s: echo, %d keystrokes; flood of %d bytes", i+1, b.c.runs, x.name, b.c.keys, n)
			e, err := x.s.echo(ctx, at, b.c.keys, nil, 0)
			if err != nil {
				res.Failed = fmt.Sprintf("echo %s: %v", x.name, err)
				return
			}
			*x.echo = append(*x.echo, e)
			f, err := x.s.flood(ctx, at, n, 1, nil)
			if err != nil {
				res.Failed = fmt.Sprintf("flood %s: %v", x.name, err)
				return
			}
			*x.flood = append(*x.flood, f)
		}
	}
}

// medianMBps is the median of the runs' mean MB/s.
func medianMBps(runs []floodResult) float64 {
	xs := make([]float64, len(runs))
	for i, f := range runs {
		xs[i] = f.MBps
	}
	return median(xs)
}

// clusterTargets are the cluster path's rows of the targets table.
func (c *clusterResults) targets() []target {
	const name, tname = "proxied echo p50", "proxied throughput"
	want := "<= direct attach +" + us(proxiedEchoExtra)
	if c == nil || len(c.Proxied) == 0 || len(c.Direct) == 0 {
		why := "not measured"
		if c != nil && c.Skipped != "" {
			why += ": " + c.Skipped
		} else if c != nil && c.Failed != "" {
			why += ": " + c.Failed
		}
		return []target{{name, why, "", want, statusNA}, {tname, why, "", "(issue 14: measured)", statusNA}}
	}
	d, p := medianEcho(c.Direct), medianEcho(c.Proxied)
	dm, pm := medianMBps(c.DirectFlood), medianMBps(c.ProxiedFlood)
	ratio := 0.0
	if dm > 0 {
		ratio = pm / dm
	}
	return []target{
		{name, fmt.Sprintf("%s (%s)", us(p.P50), signedUs(p.P50-d.P50)), "direct attach " + us(d.P50), want, verdict(p.P50-d.P50 <= proxiedEchoExtra)},
		{tname, fmt.Sprintf("%.1f MB/s (%.2fx)", pm, ratio), fmt.Sprintf("direct attach %.1f MB/s", dm), "(issue 14: measured)", statusInfo},
	}
}

// writeTable prints the cluster path's lines of the table.
func (c *clusterResults) writeTable(p func(format string, a ...any)) {
	switch {
	case c == nil:
		return
	case c.Skipped != "":
		p("%-26s skipped: %s", "cluster", c.Skipped)
		return
	case len(c.Proxied) == 0:
		p("%-26s FAILED: %s", "cluster", c.Failed)
		return
	}
	d, pr := medianEcho(c.Direct), medianEcho(c.Proxied)
	p("%-26s %6.1f MB/s   echo p50 %-7s p99 %s", "cluster, attached on b", medianMBps(c.DirectFlood), us(d.P50), us(d.P99))
	p("%-26s %6.1f MB/s   echo p50 %-7s p99 %s", "cluster, through a", medianMBps(c.ProxiedFlood), us(pr.P50), us(pr.P99))
	if c.Failed != "" {
		p("%-26s FAILED after %d runs: %s", "cluster", len(c.Proxied), c.Failed)
	}
}
