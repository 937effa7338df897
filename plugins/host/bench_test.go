package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// BenchmarkOutput measures output throughput: `head -c 200M /dev/zero` in a
// session, read to the end with 64 KiB reads, through the plugin process
// (pty → gRPC over AutoMTLS → Read) and in-process (pty → Read) for
// comparison.
func BenchmarkOutput(b *testing.B) {
	const size = 200 << 20
	envs := []struct {
		name string
		env  func(testing.TB) shared.Environment
	}{
		{"plugin", loadHost},
		{"in-process", func(testing.TB) shared.Environment { return New(nil) }},
	}
	for _, e := range envs {
		b.Run(e.name, func(b *testing.B) {
			env := e.env(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			buf := make([]byte, 64<<10)
			reads := 0
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				p, err := env.Spawn(ctx, request(fmt.Sprintf("bench-%d", i), "head", "-c", strconv.Itoa(size), "/dev/zero"))
				if err != nil {
					b.Fatal(err)
				}
				var n int64
				for {
					m, err := p.Read(buf)
					n += int64(m)
					reads++
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
			b.ReportMetric(float64(b.N)*size/float64(reads), "bytes/read")
		})
	}
}
