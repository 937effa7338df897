package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// busyMachine is the share of the machine's CPUs used by other work above
// which the report warns that its figures are noisy.
const busyMachine = 0.1

// mb is the unit of the report: 10^6 bytes.
const mb = 1e6

// clientResult is what one reader of a flood received.
type clientResult struct {
	Bytes   int64   `json:"bytes"`   // output bytes after the go byte
	Reads   int64   `json:"reads"`   // reads (direct) or messages (client) carrying them
	Seconds float64 `json:"seconds"` // from the go byte to the last byte
	MBps    float64 `json:"mb_per_s"`
	Resets  int     `json:"resets"`
}

func (c *clientResult) finish(start, last time.Time) {
	c.Seconds = last.Sub(start).Seconds()
	if c.Seconds > 0 {
		c.MBps = float64(c.Bytes) / mb / c.Seconds
	}
}

// floodResult is one flood run: one reader (direct, or one client) or
// several clients of one session.
type floodResult struct {
	Want    int64          `json:"want_bytes"`
	Clients []clientResult `json:"clients"`
	MBps    float64        `json:"mb_per_s"` // mean over the clients
	Slowest float64        `json:"slowest_mb_per_s"`
	Total   float64        `json:"total_mb_per_s"` // all clients' bytes ÷ the slowest's time
	// Invalid says why the run's figures do not count: a client was reset,
	// so it did not receive every byte.
	Invalid string `json:"invalid,omitempty"`
	// Lost says which client received the wrong number of bytes without
	// being reset: ptyhost lost or invented output.
	Lost string `json:"lost,omitempty"`
	// ReaderCPU is the direct reader's CPU time (direct runs only).
	ReaderCPU time.Duration `json:"reader_cpu_ns,omitempty"`
}

func newFloodResult(want int64, cs []clientResult) floodResult {
	f := floodResult{Want: want, Clients: cs, Slowest: cs[0].MBps}
	var total int64
	var longest float64
	var invalid, lost []string
	for i, c := range cs {
		f.MBps += c.MBps / float64(len(cs))
		f.Slowest = min(f.Slowest, c.MBps)
		total += c.Bytes
		longest = max(longest, c.Seconds)
		switch {
		case c.Resets > 0:
			invalid = append(invalid, fmt.Sprintf("client %d was reset %d times and received %d of %d bytes", i, c.Resets, c.Bytes, want))
		case c.Bytes != want:
			lost = append(lost, fmt.Sprintf("client %d received %d bytes, want %d, without a reset", i, c.Bytes, want))
		}
	}
	if longest > 0 {
		f.Total = float64(total) / mb / longest
	}
	f.Invalid = strings.Join(invalid, "; ")
	f.Lost = strings.Join(lost, "; ")
	return f
}

// echoResult is one echo run's round-trip latencies.
type echoResult struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Context switches per keystroke of all the threads of the core and
	// of the plugin (ptyhost runs on Linux only).
	CoreSwitches   float64 `json:"core_switches_per_key,omitempty"`
	PluginSwitches float64 `json:"plugin_switches_per_key,omitempty"`
	// ReadersP50 and ReadersP99, of an echo with readers attached: how
	// long after its keystroke was sent each echo reached the readers.
	ReadersP50 time.Duration `json:"readers_p50_ns,omitempty"`
	ReadersP99 time.Duration `json:"readers_p99_ns,omitempty"`
}

func newEchoResult(lat []time.Duration) echoResult {
	slices.Sort(lat)
	return echoResult{P50: percentile(lat, 50), P99: percentile(lat, 99), Max: lat[len(lat)-1]}
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(p/100*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuSample is CPU time (user + system) used by the core and the plugin.
type cpuSample struct {
	Core, Plugin time.Duration
}

func (a cpuSample) add(b cpuSample) cpuSample {
	return cpuSample{Core: a.Core + b.Core, Plugin: a.Plugin + b.Plugin}
}

func (a cpuSample) sub(b cpuSample) cpuSample {
	return cpuSample{Core: a.Core - b.Core, Plugin: a.Plugin - b.Plugin}
}

// cpuMeter adds up the CPU the processes use between start and stop. A nil
// meter measures nothing.
type cpuMeter struct {
	procs  procSet
	ticks  float64
	before cpuSample
	total  cpuSample
	err    error // the first sampling error
}

func (m *cpuMeter) start() {
	if m == nil {
		return
	}
	s, err := m.procs.sample(m.ticks)
	if err != nil && m.err == nil {
		m.err = err
	}
	m.before = s
}

func (m *cpuMeter) stop() {
	if m == nil {
		return
	}
	s, err := m.procs.sample(m.ticks)
	if err != nil && m.err == nil {
		m.err = err
	}
	m.total = m.total.add(s.sub(m.before))
}

// cpuPerMB is CPU milliseconds per MB of output delivered to one client.
type cpuPerMB struct {
	CoreMs   float64 `json:"core_ms"`
	PluginMs float64 `json:"plugin_ms"`
	TotalMs  float64 `json:"total_ms"`
}

func (a cpuSample) perMB(bytes int64) *cpuPerMB {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / (float64(bytes) / mb) }
	return &cpuPerMB{CoreMs: ms(a.Core), PluginMs: ms(a.Plugin), TotalMs: ms(a.Core + a.Plugin)}
}

// results is everything one bench run measured.
type results struct {
	Date       string `json:"date"`
	CPUs       int    `json:"cpus"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GoVersion  string `json:"go_version"`
	Scrollback string `json:"scrollback"`
	Runs       int    `json:"runs"`
	Keys       int    `json:"keys"`
	Bytes1     int64  `json:"bytes_1_client"`
	BytesN     int64  `json:"bytes_n_clients"`
	Clients    int    `json:"clients"`

	Direct      []floodResult `json:"direct_runs"`
	One         []floodResult `json:"one_client_runs"`
	Many        []floodResult `json:"n_clients_runs"`
	EchoDirect  []echoResult  `json:"echo_direct_runs"`
	EchoPtyhost []echoResult  `json:"echo_ptyhost_runs"`
	// EchoMany is the echo with fanout clients attached: the echo client
	// and fanout-1 readers.
	EchoMany []echoResult `json:"echo_n_clients_runs"`
	CPU      *cpuPerMB    `json:"cpu_per_mb,omitempty"` // nil when not measured
	CPUError string       `json:"cpu_error,omitempty"`
	// DirectCPU is the direct reader's CPU per MB, for comparison: the
	// plugin pays the same PTY reads.
	DirectCPUMs float64 `json:"direct_reader_cpu_ms_per_mb"`
	// OtherCPUs is the CPUs' worth of other work on the machine during the
	// HOST runs; nil when not measured.
	OtherCPUs *float64 `json:"other_load_cpus,omitempty"`

	// Docker and SSH are the other paths, measured after the HOST runs
	// of each round.
	Docker *remoteResults `json:"docker"`
	SSH    *remoteResults `json:"ssh"`
	// Cluster is the cluster path: two nodes on PostgreSQL, a session
	// attached on its node and through the other.
	Cluster *clusterResults `json:"cluster,omitempty"`

	// Idle is the idle-sessions run; nil when skipped, and IdleSkipped
	// says why.
	Idle        *idleResult `json:"idle_sessions,omitempty"`
	IdleSkipped string      `json:"idle_sessions_skipped,omitempty"`
	// Replay and Store run on a second server with a 1 MiB ring.
	Replay *replayResult `json:"replay"`
	Store  *storeResult  `json:"store_writes"`

	Summary summary `json:"summary"`
}

// summary is the medians over the runs, the ratios and the targets.
type summary struct {
	DirectMBps   float64       `json:"direct_mb_per_s"`
	OneMBps      float64       `json:"one_client_mb_per_s"`
	OneRatio     float64       `json:"one_client_ratio"`
	ManyMBps     float64       `json:"n_clients_mb_per_s_per_client"`
	ManySlowest  float64       `json:"n_clients_slowest_mb_per_s"`
	ManyTotal    float64       `json:"n_clients_total_mb_per_s"`
	ManyRatio    float64       `json:"n_clients_ratio"`
	EchoDirect   echoResult    `json:"echo_direct"`
	EchoPtyhost  echoResult    `json:"echo_ptyhost"`
	EchoMany     echoResult    `json:"echo_n_clients"`
	EchoP99Extra time.Duration `json:"echo_p99_extra_ns"`
	// Invalid lists the runs whose figures do not count; the medians are
	// over the other runs (over all of them if none is left).
	Invalid []string `json:"invalid,omitempty"`
	Lost    []string `json:"lost,omitempty"`
	Targets []target `json:"targets"`
}

// medianFlood returns the medians over the valid runs and notes the others.
func (s *summary) medianFlood(name string, runs []floodResult) (mean, slowest, total float64) {
	var valid []floodResult
	for i, r := range runs {
		if r.Lost != "" {
			s.Lost = append(s.Lost, fmt.Sprintf("%s, run %d: %s", name, i+1, r.Lost))
		}
		if r.Invalid != "" {
			s.Invalid = append(s.Invalid, fmt.Sprintf("%s, run %d: %s", name, i+1, r.Invalid))
			continue
		}
		valid = append(valid, r)
	}
	if len(valid) == 0 {
		valid = runs
	}
	pick := func(f func(floodResult) float64) float64 {
		xs := make([]float64, len(valid))
		for i, r := range valid {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return pick(func(r floodResult) float64 { return r.MBps }),
		pick(func(r floodResult) float64 { return r.Slowest }),
		pick(func(r floodResult) float64 { return r.Total })
}

func medianEcho(runs []echoResult) echoResult {
	var p50, p99, mx []time.Duration
	var rp50, rp99 []time.Duration
	var core, plugin []float64
	for _, r := range runs {
		p50, p99, mx = append(p50, r.P50), append(p99, r.P99), append(mx, r.Max)
		rp50, rp99 = append(rp50, r.ReadersP50), append(rp99, r.ReadersP99)
		core, plugin = append(core, r.CoreSwitches), append(plugin, r.PluginSwitches)
	}
	return echoResult{P50: median(p50), P99: median(p99), Max: median(mx), CoreSwitches: median(core), PluginSwitches: median(plugin),
		ReadersP50: median(rp50), ReadersP99: median(rp99)}
}

func (r *results) summarize() {
	s := &r.Summary
	s.DirectMBps, _, _ = s.medianFlood("direct", r.Direct)
	s.OneMBps, _, _ = s.medianFlood("1 client", r.One)
	s.ManyMBps, s.ManySlowest, s.ManyTotal = s.medianFlood(fmt.Sprintf("%d clients", r.Clients), r.Many)
	if s.DirectMBps > 0 {
		s.OneRatio = s.OneMBps / s.DirectMBps
		s.ManyRatio = s.ManyMBps / s.DirectMBps
	}
	s.EchoDirect, s.EchoPtyhost = medianEcho(r.EchoDirect), medianEcho(r.EchoPtyhost)
	s.EchoMany = medianEcho(r.EchoMany)
	s.EchoP99Extra = s.EchoPtyhost.P99 - s.EchoDirect.P99
	var cpu time.Duration
	var n int64
	for _, d := range r.Direct {
		cpu += d.ReaderCPU
		n += d.Want
	}
	if n > 0 {
		r.DirectCPUMs = float64(cpu) / float64(time.Millisecond) / (float64(n) / mb)
	}
}

// lostOutput describes runs in which ptyhost lost output without a reset;
// "" if none did.
func (r *results) lostOutput() string {
	if len(r.Summary.Lost) == 0 {
		return ""
	}
	return "ptyhost lost output: " + strings.Join(r.Summary.Lost, "; ")
}

// us formats a latency in microseconds, or milliseconds from 10 ms on.
func us(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

func signedUs(d time.Duration) string {
	if d < 0 {
		return "-" + us(-d)
	}
	return "+" + us(d)
}

func (r *results) writeTable(w io.Writer, remotes []*remote) {
	s := &r.Summary
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	runs := func(fs []floodResult, f func(floodResult) float64) string {
		var b []string
		for _, x := range fs {
			b = append(b, fmt.Sprintf("%.1f", f(x)))
		}
		return strings.Join(b, " ")
	}
	mean := func(f floodResult) float64 { return f.MBps }

	p("")
	p("ptyhost bench, %s: %s/%s, %d CPUs, %s", r.Date, r.GOOS, r.GOARCH, r.CPUs, r.GoVersion)
	p("server --scrollback %s (replay: %s); flood %d MiB (direct, 1 client), %d MiB (%d clients);", r.Scrollback, replayRing, r.Bytes1>>20, r.BytesN>>20, r.Clients)
	p("echo %d keystrokes; median of %d runs; MB = 10^6 bytes", r.Keys, r.Runs)
	p("")
	p("%-26s %6.1f MB/s", "direct PTY read", s.DirectMBps)
	p("%-26s %6.1f MB/s   %.2fx direct", "ptyhost, 1 client", s.OneMBps, s.OneRatio)
	p("%-26s %6.1f MB/s per client   %.2fx direct   (slowest %.1f, %.1f MB/s in all)",
		fmt.Sprintf("ptyhost, %d clients", r.Clients), s.ManyMBps, s.ManyRatio, s.ManySlowest, s.ManyTotal)
	p("%-26s p50 %-7s p99 %s", "echo direct", us(s.EchoDirect.P50), us(s.EchoDirect.P99))
	p("%-26s p50 %-7s p99 %-7s (p99 %s over direct)", "echo ptyhost", us(s.EchoPtyhost.P50), us(s.EchoPtyhost.P99), signedUs(s.EchoP99Extra))
	p("%-26s p50 %-7s p99 %-7s (echo client + %d readers)", fmt.Sprintf("echo ptyhost, %d clients", r.Clients), us(s.EchoMany.P50), us(s.EchoMany.P99), r.Clients-1)
	p("%-26s p50 %-7s p99 %-7s (keystroke to the echo at the %d readers)", "", us(s.EchoMany.ReadersP50), us(s.EchoMany.ReadersP99), r.Clients-1)
	if s.EchoPtyhost.CoreSwitches > 0 {
		p("%-26s core %.1f + plugin %.1f context switches per keystroke", "", s.EchoPtyhost.CoreSwitches, s.EchoPtyhost.PluginSwitches)
	}
	if r.CPU != nil {
		p("%-26s core %.1f ms + plugin %.1f ms = %.1f ms   (1 client; direct reader %.1f ms)",
			"CPU per MB", r.CPU.CoreMs, r.CPU.PluginMs, r.CPU.TotalMs, r.DirectCPUMs)
	} else {
		p("%-26s not measured: %s", "CPU per MB", r.CPUError)
	}
	for _, rm := range remotes {
		rm.writeTable(p)
	}
	r.Cluster.writeTable(p)
	r.writeScale(p)
	if r.OtherCPUs != nil {
		p("%-26s %.2f CPUs of %d busy with other work during the host runs", "other load", *r.OtherCPUs, r.CPUs)
	}
	p("")
	p("runs (MB/s): direct %s | 1 client %s | %d clients %s", runs(r.Direct, mean), runs(r.One, mean), r.Clients, runs(r.Many, mean))
	var e []string
	for i := range r.EchoDirect {
		e = append(e, fmt.Sprintf("%s/%s vs %s/%s", us(r.EchoDirect[i].P50), us(r.EchoDirect[i].P99), us(r.EchoPtyhost[i].P50), us(r.EchoPtyhost[i].P99)))
	}
	p("runs (echo p50/p99, direct vs ptyhost): %s", strings.Join(e, " | "))
	e = e[:0]
	for _, x := range r.EchoMany {
		e = append(e, us(x.P50)+"/"+us(x.P99)+" (readers "+us(x.ReadersP50)+"/"+us(x.ReadersP99)+")")
	}
	p("runs (echo p50/p99, %d clients): %s", r.Clients, strings.Join(e, " | "))
	for _, rm := range remotes {
		if l := rm.runsLine(); l != "" {
			p("runs (%s): %s", rm.name, l)
		}
	}
	if c := r.Cluster; c != nil && len(c.Proxied) > 0 {
		var b []string
		for i := range c.Proxied {
			b = append(b, fmt.Sprintf("%.1f vs %.1f MB/s, echo %s vs %s", c.DirectFlood[i].MBps, c.ProxiedFlood[i].MBps, us(c.Direct[i].P50), us(c.Proxied[i].P50)))
		}
		p("runs (cluster, on b vs through a): %s", strings.Join(b, " | "))
	}
	p("")
	writeTargets(p, s.Targets)
	if r.OtherCPUs != nil && *r.OtherCPUs > busyMachine*float64(r.CPUs) {
		p("")
		p("!!! the machine was busy with other work (%.2f CPUs): these figures are noisy; run again on a quiet machine", *r.OtherCPUs)
	}
	for _, x := range s.Invalid {
		p("")
		p("!!! INVALID RUN: %s", x)
		p("!!! a client fell more than the scrollback behind and lost output; that run's figures do not count")
	}
	for _, x := range s.Lost {
		p("")
		p("!!! LOST OUTPUT: %s", x)
	}
}

func (r *results) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
