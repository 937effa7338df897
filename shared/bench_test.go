package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// floodPTY is a PTY whose output is size bytes, in reads of at most chunk
// bytes, as a terminal that is never empty.
type floodPTY struct {
	left, chunk int
}

func (p *floodPTY) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.chunk, p.left)
	p.left -= n
	return n, nil
}

func (p *floodPTY) Write(b []byte) (int, error)              { return len(b), nil }
func (p *floodPTY) Resize(context.Context, Size) error       { return nil }
func (p *floodPTY) Wait(context.Context) (ExitStatus, error) { return ExitStatus{}, nil }
func (p *floodPTY) Kill(context.Context) error               { return nil }
func (p *floodPTY) Close() error                             { return nil }

// BenchmarkSessionOutput measures the SDK's output path alone: a PTY that
// always has output, through the plugin's server, gRPC and the host's
// Read, in 4 KiB reads as a pseudo-terminal gives them.
func BenchmarkSessionOutput(b *testing.B) {
	const size = 64 << 20
	c, _ := glue(b, &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		return &floodPTY{left: size, chunk: 4 << 10}, nil
	}})
	ctx := context.Background()
	buf := make([]byte, 64<<10)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		p, err := c.Spawn(ctx, spawnReq(fmt.Sprintf("bench-%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := p.Read(buf)
			n += m
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
		p.Close()
	}
}
