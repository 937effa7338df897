package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// loadBoth starts the host and docker plugin binaries, for comparisons.
func loadBoth(b *testing.B) (host, docker shared.Environment) {
	b.Helper()
	needDaemon(b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: testbin.PluginDir(b, "host", "docker"), Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(plugins.Close)
	if host, err = plugins.Environment("HOST"); err != nil {
		b.Fatal(err)
	}
	if docker, err = plugins.Environment(EnvironmentType); err != nil {
		b.Fatal(err)
	}
	return host, docker
}

// BenchmarkOutput measures output throughput through the plugin process
// (terminal → gRPC → Read): `head -c 200M /dev/zero` in a DOCKER session
// (container tty → daemon → attach stream → plugin) and, for the ratio, in
// a HOST session.
func BenchmarkOutput(b *testing.B) {
	const size = 200 << 20
	host, docker := loadBoth(b)
	for _, e := range []struct {
		name string
		env  shared.Environment
		typ  string
		cfg  []byte
	}{
		{"docker", docker, EnvironmentType, imageConfig(nil)},
		{"host", host, "HOST", nil},
	} {
		b.Run(e.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			buf := make([]byte, 64<<10)
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				req := request(fmt.Sprintf("bench-%s-%d", e.name, i), e.cfg, "head", "-c", strconv.Itoa(size), "/dev/zero")
				req.EnvironmentType = e.typ
				p, err := e.env.Spawn(ctx, req)
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

// BenchmarkCreate measures the time Spawn takes with the image present:
// create, attach, start (and, on daemons before API 1.42, the size gate's
// resize), reported as p50 and p90 in milliseconds. Each session runs
// /bin/true and is read to its end and closed outside the timing.
func BenchmarkCreate(b *testing.B) {
	_, docker := loadBoth(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var times []time.Duration
	buf := make([]byte, 4096)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		p, err := docker.Spawn(ctx, request(fmt.Sprintf("bench-create-%d", i), imageConfig(nil), "/bin/true"))
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		b.StopTimer()
		for {
			if _, err := p.Read(buf); err != nil {
				break
			}
		}
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		p.Close()
		b.StartTimer()
	}
	slices.Sort(times)
	ms := func(q float64) float64 {
		return float64(times[int(q*float64(len(times)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
}
