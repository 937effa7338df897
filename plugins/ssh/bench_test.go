package main

// Benchmarks of the SSH path over loopback (plugin process → gRPC → SSH →
// the test sshd → PTY) against the HOST plugin (plugin process → gRPC →
// PTY), both loaded through pluginhost.Load as the server loads them:
//
//	go test -run '^$' -bench . -benchtime 3x ./plugins/ssh/
//
// BenchmarkOutput reports MB/s per path (divide ssh by host for the ratio),
// BenchmarkEcho the p50/p99 round trip of one keystroke echoed by the
// remote program, BenchmarkCreate the time to start a session (Spawn until
// it returns) on a warm connection, as p50 (the whole iteration,
// which also waits for the exit, is not the figure).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// benchEnvs returns the SSH and HOST environments, each with the config
// and request shape to use.
func benchEnvs(b *testing.B) []benchEnv {
	s := testSSHD(b)
	plugins := loadPluginsNamed(b, "host", "ssh")
	sshEnv, err := plugins.Environment(EnvironmentType)
	if err != nil {
		b.Fatal(err)
	}
	hostEnv, err := plugins.Environment("HOST")
	if err != nil {
		b.Fatal(err)
	}
	return []benchEnv{
		{"ssh", sshEnv, "SSH", s.config(b, 0, map[string]any{"linger": "1m"})},
		{"host", hostEnv, "HOST", nil},
	}
}

type benchEnv struct {
	name   string
	env    shared.Environment
	typ    string
	config []byte
}

func (e benchEnv) request(id string, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{SessionID: id, EnvironmentID: "bench-" + e.name, EnvironmentType: e.typ,
		Config: e.config, Command: argv, Size: shared.Size{Cols: 80, Rows: 24}}
}

func BenchmarkOutput(b *testing.B) {
	const size = 64 << 20
	for _, e := range benchEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			buf := make([]byte, 64<<10)
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				p, err := e.env.Spawn(ctx, e.request(fmt.Sprintf("out-%d", i), "head", "-c", strconv.Itoa(size), "/dev/zero"))
				if err != nil {
					b.Fatal(err)
				}
				var n int64
				for {
					m, err := p.Read(buf)
					n += int64(m)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != size {
					b.Fatalf("read %d bytes, want %d", n, size)
				}
				if _, err := p.Wait(ctx); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}

func BenchmarkEcho(b *testing.B) {
	const keys = 300
	for _, e := range benchEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var all []time.Duration
			for i := 0; b.Loop(); i++ {
				p, err := e.env.Spawn(ctx, e.request(fmt.Sprintf("echo-%d", i), "/bin/sh", "-c", "stty raw -echo && echo ready && exec cat"))
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 4096)
				var seen []byte
				for !bytes.Contains(seen, []byte("ready")) {
					n, err := p.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					seen = append(seen, buf[:n]...)
				}
				for k := range keys {
					key := []byte{byte('a' + k%26)}
					start := time.Now()
					if _, err := p.Write(key); err != nil {
						b.Fatal(err)
					}
					for got := false; !got; {
						n, err := p.Read(buf)
						if err != nil {
							b.Fatal(err)
						}
						got = n > 0 && buf[n-1] == key[0]
					}
					all = append(all, time.Since(start))
				}
				p.Kill(ctx)
				io.Copy(io.Discard, p)
				p.Close()
			}
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		})
	}
}

func BenchmarkCreate(b *testing.B) {
	for _, e := range benchEnvs(b) {
		b.Run(e.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			// Warm the connection (and the plugin) first.
			p, err := e.env.Spawn(ctx, e.request("warm", "true"))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, p)
			p.Close()
			var all []time.Duration
			for i := range b.N {
				start := time.Now()
				p, err := e.env.Spawn(ctx, e.request(fmt.Sprintf("create-%d", i), "true"))
				if err != nil {
					b.Fatal(err)
				}
				all = append(all, time.Since(start))
				io.Copy(io.Discard, p)
				p.Close()
			}
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}
