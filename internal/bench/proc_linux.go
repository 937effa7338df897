package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverProcAttr puts the server in a process group of its own, so that
// the bench alone stops it (a Ctrl-C reaches only the bench, which then
// sends one SIGTERM), and makes it get SIGTERM if the bench dies without
// stopping it (kill -9).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// clockTicks returns the kernel's clock ticks per second, the unit of the
// CPU times in /proc/PID/stat.
func clockTicks() (float64, error) {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 0, fmt.Errorf("getconf CLK_TCK: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("getconf CLK_TCK said %q", out)
	}
	return float64(n), nil
}

// procSet is the processes whose CPU the bench charges to ptyhost.
type procSet struct {
	core, plugin int
}

// findProcs finds the plugin process: the server's child whose command
// line names ptyhost-plugin-host.
func findProcs(serverPID int) (procSet, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return procSet{}, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.ppid != serverPID {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("ptyhost-plugin-host")) {
			return procSet{core: serverPID, plugin: pid}, nil
		}
	}
	return procSet{}, fmt.Errorf("no child of ptyhost serve (pid %d) runs ptyhost-plugin-host", serverPID)
}

// stat is what the bench reads from /proc/PID/stat.
type stat struct {
	ppid           int
	flags          uint64
	utime, stime   int64 // clock ticks
	cutime, cstime int64 // of reaped children, clock ticks
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// the fields after it start with field 3, the state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return stat{}, fmt.Errorf("/proc/%d/stat: only %d fields", pid, len(f)+2)
	}
	// f[i] is field i+3 of proc(5).
	var s stat
	var errs [6]error
	s.ppid, errs[0] = strconv.Atoi(f[4-3])
	s.flags, errs[1] = strconv.ParseUint(f[9-3], 10, 64)
	s.utime, errs[2] = strconv.ParseInt(f[14-3], 10, 64)
	s.stime, errs[3] = strconv.ParseInt(f[15-3], 10, 64)
	s.cutime, errs[4] = strconv.ParseInt(f[16-3], 10, 64)
	s.cstime, errs[5] = strconv.ParseInt(f[17-3], 10, 64)
	for _, err := range errs {
		if err != nil {
			return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return s, nil
}

// sample reads both processes' CPU time (user + system).
func (p procSet) sample(ticks float64) (cpuSample, error) {
	core, err := readStat(p.core)
	if err != nil {
		return cpuSample{}, err
	}
	plugin, err := readStat(p.plugin)
	if err != nil {
		return cpuSample{}, err
	}
	d := func(s stat) time.Duration {
		return time.Duration(float64(s.utime+s.stime) / ticks * float64(time.Second))
	}
	return cpuSample{Core: d(core), Plugin: d(plugin)}, nil
}

// switches returns the context switches (voluntary and not) of all the
// threads of the core and of the plugin so far.
func (p procSet) switches() (core, plugin int64, err error) {
	if core, err = threadSwitches(p.core); err != nil {
		return 0, 0, err
	}
	plugin, err = threadSwitches(p.plugin)
	return core, plugin, err
}

func threadSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of pid %d: %v", pid, err)
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			} else if rest, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				n += v
			}
		}
	}
	return n, nil
}

// selfCPU returns the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadMeter estimates how much CPU other work on the machine used while
// the bench ran: the machine's busy time (/proc/stat) less the bench's own
// processes (itself, its children, the server, the plugin and the
// plugin's reaped children) and less kernel threads, which include the
// workers that move PTY data. It counts only while it runs: the bench
// pauses it around the DOCKER and SSH runs, whose daemons (dockerd,
// containerd, sshd and what they start) it cannot tell from other work.
type loadMeter struct {
	procs   procSet
	ticks   float64
	running bool
	from    time.Time // when it last started counting
	at0     cpuTotals // the totals then
	// other and span add up the periods it counted.
	other, span time.Duration
	err         error // the first error
}

type cpuTotals struct {
	busy, ours, kernel time.Duration
}

// newLoadMeter returns a running meter.
func newLoadMeter(procs procSet, ticks float64) (*loadMeter, error) {
	m := &loadMeter{procs: procs, ticks: ticks}
	m.resume()
	return m, m.err
}

// resume starts counting again. A nil meter does nothing.
func (m *loadMeter) resume() {
	if m == nil || m.running || m.err != nil {
		return
	}
	m.from = time.Now()
	m.at0, m.err = m.totals()
	m.running = m.err == nil
}

// pause stops counting until resume. A nil meter does nothing.
func (m *loadMeter) pause() {
	if m == nil || !m.running {
		return
	}
	m.running = false
	at1, err := m.totals()
	if err != nil {
		m.err = err
		return
	}
	m.other += (at1.busy - m.at0.busy) - (at1.ours - m.at0.ours) - (at1.kernel - m.at0.kernel)
	m.span += time.Since(m.from)
}

// otherCPUs stops the meter and returns the CPUs' worth of other work
// over the periods it counted.
func (m *loadMeter) otherCPUs() (float64, error) {
	m.pause()
	if m.err != nil {
		return 0, m.err
	}
	if m.span <= 0 {
		return 0, nil
	}
	return max(0, float64(m.other)/float64(m.span)), nil
}

func (m *loadMeter) totals() (cpuTotals, error) {
	var t cpuTotals
	tick := func(n int64) time.Duration { return time.Duration(float64(n) / m.ticks * float64(time.Second)) }
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return t, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already in user).
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return t, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 && i != 7 { // not idle, iowait, steal
			t.busy += tick(n)
		}
	}
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return t, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		return t, err
	}
	t.ours = time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	for _, pid := range []int{m.procs.core, m.procs.plugin} {
		s, err := readStat(pid)
		if err != nil {
			return t, err
		}
		t.ours += tick(s.utime + s.stime + s.cutime + s.cstime)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, err := readStat(pid); err == nil && s.flags&pfKthread != 0 {
			t.kernel += tick(s.utime + s.stime)
		}
	}
	return t, nil
}

// pfKthread is the flag of kernel threads in /proc/PID/stat.
const pfKthread = 0x00200000
