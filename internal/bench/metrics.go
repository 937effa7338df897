package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The server's /metrics figures the bench reads. The Go collector is
// registered by `ptyhost serve` (cmd/ptyhost/serve.go), so the first two
// exist; a server without them reports them as missing, not zero.
const (
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	// metricStoreWrites counts every store write: the writer times each
	// (core/writer.go), so the histogram's count is the number of writes.
	metricStoreWrites = "ptyhost_store_write_seconds_count"
)

// metrics reads GET /metrics and returns the values of the unlabelled
// series named; a name missing from the answer is missing from the map.
func (s *server) metrics(ctx context.Context, names ...string) (map[string]float64, error) {
	b, err := s.do(ctx, http.MethodGet, "/metrics", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !want[f[0]] {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("GET /metrics: %s: %w", f[0], err)
		}
		got[f[0]] = v
	}
	return got, sc.Err()
}
