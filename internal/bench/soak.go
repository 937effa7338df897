package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The soak (--soak DURATION): sessions with periodic output and clients
// attaching and detaching, for a long time, while the bench samples the
// core's and the plugin's memory, goroutines and threads. It answers
// whether they stay flat after warm-up; it is not part of the default run.

const (
	// soakTickMs is how often each soak session writes a line.
	soakTickMs = 500
	// soakFillBytes is what each soak session writes first: more than the
	// default scrollback.
	soakFillBytes = 320 << 10
	// soakAttachers clients attach and detach at once, each to a random
	// session, staying soakStay (reading the replay and live output).
	soakAttachers = 4
	soakStay      = 200 * time.Millisecond
	// soakMaxInterval is the longest time between two samples; shorter
	// soaks sample every twentieth of their duration.
	soakMaxInterval = 30 * time.Second
	// soakFlat is how far the last third's mean may be from the middle
	// third's for a series to count as flat.
	soakFlat = 0.10
)

// soakSample is one reading of the soak's series.
type soakSample struct {
	At         float64  `json:"at_s"`
	Core       procMem  `json:"core"`
	Plugin     procMem  `json:"plugin"`
	Goroutines *float64 `json:"core_goroutines,omitempty"` // nil: not on /metrics
	Attaches   int64    `json:"attaches"`                  // so far
}

// soakSeries is one series' verdict.
type soakSeries struct {
	Name   string  `json:"name"`
	Middle float64 `json:"middle_third_mean"`
	Last   float64 `json:"last_third_mean"`
	Change float64 `json:"change"` // (last - middle) / middle
	Flat   bool    `json:"flat"`
}

type soakResult struct {
	Date          string        `json:"date"`
	Duration      time.Duration `json:"duration_ns"`
	Sessions      int           `json:"sessions"`
	Interval      time.Duration `json:"interval_ns"`
	Samples       []soakSample  `json:"samples"`
	Series        []soakSeries  `json:"series"`
	AttachErrors  int64         `json:"attach_errors"`
	FirstAttachEr string        `json:"first_attach_error,omitempty"`
}

// soak runs the soak on a server of its own and prints the series.
func (b *bench) soak(ctx context.Context, bin, tmp string, stdout, stderr io.Writer) error {
	c := b.c
	out := stdout
	if c.json {
		out = stderr
	}
	p := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	srv, err := startServer(ctx, bin, mkdir(tmp, "data"), "", stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			b.log("stopping the server: %v", err)
		}
	}()
	procs, err := findProcs(srv.pid())
	if err != nil {
		return fmt.Errorf("the soak reads the plugin's figures: %w", err)
	}
	interval := min(soakMaxInterval, c.soak/20)
	r := &soakResult{Date: time.Now().UTC().Format(time.RFC3339), Duration: c.soak, Sessions: c.soakSessions, Interval: interval}

	b.log("soak: creating %d sessions writing a line every %dms", c.soakSessions, soakTickMs)
	ids := make([]string, c.soakSessions)
	defer func() { _ = srv.deleteAll(ids) }()
	// Each session first writes more than a scrollback (the server's
	// default, as the soak runs it) so that the rings, the core's and the
	// plugin's, are full from the start and what grows after the warm-up
	// is not their filling (at a line every 500 ms that takes half an hour).
	argv := b.host.argv("trickle", strconv.Itoa(soakTickMs), strconv.Itoa(soakFillBytes))
	if err := bounded(len(ids), func(i int) error {
		id, err := srv.createSession(ctx, b.host, argv)
		ids[i] = id
		return err
	}); err != nil {
		return fmt.Errorf("soak: creating the sessions: %w", err)
	}

	actx, stopAttach := context.WithCancel(ctx)
	var attaches, attachErrs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range soakAttachers {
		wg.Go(func() {
			for actx.Err() == nil {
				err := srv.visit(actx, ids[rand.IntN(len(ids))])
				switch {
				case err == nil:
					attaches.Add(1)
				case actx.Err() == nil:
					attachErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	defer func() {
		stopAttach()
		wg.Wait()
	}()

	p("soak, %s: %d sessions (%s, a line every %dms), %d clients attaching and detaching, %v, a sample every %v",
		r.Date, c.soakSessions, filepath.Base(argv[0])+" trickle", soakTickMs, soakAttachers, c.soak, interval)
	p("%8s %12s %11s %12s %8s %8s %9s", "t", "core RSS", "goroutines", "plugin RSS", "threads", "p. fds", "attaches")
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		s := soakSample{At: time.Since(start).Seconds(), Attaches: attaches.Load()}
		if s.Core, err = readProcMem(procs.core); err != nil {
			return fmt.Errorf("soak: the core: %w", err)
		}
		if s.Plugin, err = readProcMem(procs.plugin); err != nil {
			return fmt.Errorf("soak: the plugin: %w", err)
		}
		if m, err := srv.metrics(ctx, metricGoroutines); err == nil {
			if v, ok := m[metricGoroutines]; ok {
				s.Goroutines = &v
			}
		}
		g := "n/a"
		if s.Goroutines != nil {
			g = strconv.Itoa(int(*s.Goroutines))
		}
		p("%7.0fs %12s %11s %12s %8d %8d %9d", s.At, mib(s.Core.RSS), g, mib(s.Plugin.RSS), s.Plugin.Threads, s.Plugin.FDs, s.Attaches)
		r.Samples = append(r.Samples, s)
		if time.Since(start) >= c.soak {
			break
		}
	}
	r.AttachErrors = attachErrs.Load()
	if v, ok := firstErr.Load().(string); ok {
		r.FirstAttachEr = v
	}
	r.Series = soakVerdicts(r.Samples)
	p("")
	p("after warm-up (mean of the last third of the samples vs the middle third; flat within %.0f%%):", soakFlat*100)
	for _, x := range r.Series {
		v := "flat"
		if !x.Flat {
			v = "NOT FLAT"
		}
		p("  %-16s %14.1f -> %14.1f  %+6.1f%%  %s", x.Name, x.Middle, x.Last, x.Change*100, v)
	}
	if r.AttachErrors > 0 {
		p("!!! %d attaches failed; the first: %s", r.AttachErrors, r.FirstAttachEr)
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return nil
}

// visit attaches to session id, reads its replay and output for
// soakStay, and detaches.
func (s *server) visit(ctx context.Context, id string) error {
	c, err := s.attach(ctx, id)
	if err != nil {
		return err
	}
	defer c.close()
	rctx, cancel := context.WithTimeout(ctx, soakStay)
	defer cancel()
	for {
		if _, err := c.next(rctx); err != nil {
			if rctx.Err() != nil && ctx.Err() == nil {
				return nil // stayed its time
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("session %s exited: %s", id, c.exitString())
			}
			return err
		}
	}
}

// soakVerdicts compares each series' last third with its middle third.
func soakVerdicts(ss []soakSample) []soakSeries {
	series := []struct {
		name string
		f    func(soakSample) (float64, bool)
	}{
		{"core RSS MiB", func(s soakSample) (float64, bool) { return float64(s.Core.RSS) / (1 << 20), true }},
		{"core goroutines", func(s soakSample) (float64, bool) {
			if s.Goroutines == nil {
				return 0, false
			}
			return *s.Goroutines, true
		}},
		{"plugin RSS MiB", func(s soakSample) (float64, bool) { return float64(s.Plugin.RSS) / (1 << 20), true }},
		{"plugin threads", func(s soakSample) (float64, bool) { return float64(s.Plugin.Threads), true }},
	}
	n := len(ss) / 3
	var out []soakSeries
	for _, x := range series {
		mean := func(part []soakSample) (float64, bool) {
			var sum float64
			for _, s := range part {
				v, ok := x.f(s)
				if !ok {
					return 0, false
				}
				sum += v
			}
			return sum / float64(len(part)), len(part) > 0
		}
		mid, ok1 := mean(ss[n : 2*n])
		last, ok2 := mean(ss[len(ss)-n:])
		if !ok1 || !ok2 || mid == 0 {
			continue
		}
		ch := (last - mid) / mid
		out = append(out, soakSeries{x.name, mid, last, ch, math.Abs(ch) <= soakFlat})
	}
	return out
}
