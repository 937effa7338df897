package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

const usage = `Usage: go run ./internal/bench [flags]   (make bench: scripts/bench.sh)

Measures throughput, echo latency and CPU through ptyhost against a direct
PTY read of the same program, the DOCKER and SSH paths against the HOST
path, what 1,000 idle sessions cost, the replay of a full ring to a
joining client and the store writes under output, and prints every figure
with issue 13's target; see docs/performance.md. With --soak DURATION it
runs only the soak instead: many sessions with periodic output and clients
attaching and detaching, printing the memory series.

The DOCKER path needs PTYHOST_TEST_DOCKER_IMAGE (and DOCKER_HOST unless the
daemon is at /var/run/docker.sock), the SSH path PTYHOST_TEST_SSH_HOST,
_PORT, _USER, _KEY and _HOST_KEY_PUB: the lines that
scripts/services/{docker,sshd}.sh start print. Without them the path is
skipped; PTYHOST_BENCH_SKIP_DOCKER or PTYHOST_BENCH_SKIP_SSH skips it with
the reason they hold.

Flags:
`

// errUsage is a command-line error that has been reported already.
var errUsage = errors.New("usage error")

// config is the bench's configuration, from its flags.
type config struct {
	bin         string // directory holding ptyhost and plugins/
	bytes       int64  // flood size of the one-client run; the fan-out run uses half
	remoteBytes int64  // flood size of the DOCKER and SSH runs
	runs        int
	keys        int
	json        bool
	// idle is the number of idle sessions of the idle-sessions run; 0
	// skips it.
	idle int
	// soak, when not zero, runs only the soak for that long, with
	// soakSessions sessions.
	soak         time.Duration
	soakSessions int
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	c := config{bytes: 256 << 20}
	fs.StringVar(&c.bin, "bin", "bin", "directory holding the built ptyhost and plugins/ (make build)")
	fs.Func("bytes", "flood size of the direct and 1-client runs, e.g. 64MiB; the 8-client run uses half (default 256MiB)", func(s string) error {
		n, err := parseSize(s)
		c.bytes = n
		return err
	})
	fs.Func("remote-bytes", "flood size of the DOCKER and SSH runs (default: --bytes)", func(s string) error {
		n, err := parseSize(s)
		c.remoteBytes = n
		return err
	})
	fs.IntVar(&c.runs, "runs", 3, "runs of each measurement; the median is reported")
	fs.IntVar(&c.keys, "keys", 2000, "timed keystrokes per echo run")
	fs.BoolVar(&c.json, "json", false, "print JSON on stdout (the table goes to stderr)")
	fs.IntVar(&c.idle, "idle-sessions", 1000, "idle HOST sessions of the idle-sessions run; 0 skips it")
	fs.DurationVar(&c.soak, "soak", 0, "run only the soak, for this long (the issue's is 30m); 0: no soak")
	fs.IntVar(&c.soakSessions, "soak-sessions", 200, "sessions of the soak")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, errUsage // the flag package has said what is wrong
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.bytes < 1<<20:
		return c, fmt.Errorf("--bytes must be at least 1MiB")
	case c.remoteBytes != 0 && c.remoteBytes < 1<<20:
		return c, fmt.Errorf("--remote-bytes must be at least 1MiB")
	case c.runs < 1:
		return c, fmt.Errorf("--runs must be at least 1")
	case c.keys < 100:
		return c, fmt.Errorf("--keys must be at least 100")
	case c.idle < 0:
		return c, fmt.Errorf("--idle-sessions must not be negative (0 skips the run)")
	case c.soak < 0 || (c.soak > 0 && c.soak < 20*time.Second):
		return c, fmt.Errorf("--soak must be at least 20s (or 0, no soak)")
	case c.soakSessions < 1:
		return c, fmt.Errorf("--soak-sessions must be at least 1")
	}
	if c.remoteBytes == 0 {
		c.remoteBytes = c.bytes
	}
	return c, nil
}

// parseSize parses 67108864, 64MiB, 64M, 512KiB or 512K.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 67108864 or 64MiB")
	}
	return n * mult, nil
}
