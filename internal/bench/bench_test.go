package main

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSoakVerdicts(t *testing.T) {
	var ss []soakSample
	for i := range 9 {
		g := float64(100)
		s := soakSample{Core: procMem{RSS: 10 << 20}, Plugin: procMem{RSS: int64(10+i) << 20, Threads: 8}, Goroutines: &g}
		ss = append(ss, s)
	}
	got := map[string]bool{}
	for _, x := range soakVerdicts(ss) {
		got[x.Name] = x.Flat
	}
	// The plugin's RSS grows from 13-15 MiB (middle) to 16-18 MiB (last):
	// +20 %, not flat; the rest are constant.
	want := map[string]bool{"core RSS MiB": true, "core goroutines": true, "plugin RSS MiB": false, "plugin threads": true}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: flat = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestSoakVerdictsWithoutGoroutines(t *testing.T) {
	ss := make([]soakSample, 6)
	for _, x := range soakVerdicts(ss) {
		if x.Name == "core goroutines" {
			t.Errorf("goroutines judged without a reading: %+v", x)
		}
	}
}

func TestBoundedRunsAllAndStopsOnError(t *testing.T) {
	var n atomic.Int64
	if err := bounded(100, func(int) error { n.Add(1); return nil }); err != nil || n.Load() != 100 {
		t.Fatalf("bounded ran %d of 100 calls, err %v", n.Load(), err)
	}
	boom := errors.New("boom")
	err := bounded(1000, func(i int) error {
		if i == 500 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("bounded returned %v, want boom", err)
	}
}

func TestTargetsIdleSkipped(t *testing.T) {
	r := &results{IdleSkipped: "--idle-sessions 0", Docker: &remoteResults{Skipped: "no"}, SSH: &remoteResults{Skipped: "no"}}
	for _, x := range r.targets() {
		if x.Status == statusPass && (strings.HasPrefix(x.Name, "idle") || strings.Contains(x.Name, "DOCKER") || strings.Contains(x.Name, "SSH")) {
			t.Errorf("%s passes with nothing measured", x.Name)
		}
	}
}
