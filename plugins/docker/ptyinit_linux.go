package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// runPTYInit is the plugin binary's other role: the container's command in
// the direct terminal mode (see direct.go), run as
//
//	/.ptyhost/init pty-init SOCKET ROWS COLS -- COMMAND [ARG...]
//
// It opens a terminal of ROWS×COLS in the container, hands its master to
// the plugin over the unix socket SOCKET (SCM_RIGHTS), starts COMMAND on
// the terminal as a session leader with the container's environment and
// working directory, passes on the signals a container gets (the stop
// signal, docker kill), reaps what it inherits when it is pid 1, and exits
// with COMMAND's code, 128+n for death by signal n. A COMMAND that cannot
// be started says why on the terminal and exits 127 (not found) or 126,
// as a shell does. It returns the exit code.
func runPTYInit(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "ptyhost pty-init: "+format+"\n", a...)
		return 125
	}
	if len(args) < 5 || args[3] != "--" {
		return fail("usage: pty-init SOCKET ROWS COLS -- COMMAND [ARG...]")
	}
	rows, err1 := strconv.ParseUint(args[1], 10, 16)
	cols, err2 := strconv.ParseUint(args[2], 10, 16)
	if err := errors.Join(err1, err2); err != nil || rows == 0 || cols == 0 {
		return fail("bad terminal size %sx%s", args[2], args[1])
	}
	argv := args[4:]

	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: args[0], Net: "unix"})
	if err != nil {
		return fail("reaching the plugin: %v", err)
	}
	defer conn.Close()
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) {
		err = nil // found in the working directory, as a shell finds it
	}
	if err != nil {
		// The plugin fails the spawn with this, as the daemon's start
		// fails for a command it cannot find.
		_, _ = conn.Write([]byte("E" + err.Error()))
		return 127
	}
	master, tty, err := shared.OpenPTY(shared.Size{Rows: uint16(rows), Cols: uint16(cols)})
	if err != nil {
		_, _ = conn.Write([]byte("E" + err.Error()))
		return fail("%v", err)
	}
	err = handOver(conn, master)
	master.Close()
	if err != nil {
		tty.Close()
		return fail("handing the terminal to the plugin: %v", err)
	}
	conn.Close()

	// Not exec.Command, which would look argv[0] up again (and refuse
	// one found in the working directory).
	cmd := &exec.Cmd{Path: path, Args: argv}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	// Forward before the start, so that no signal falls between.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2)
	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		fmt.Fprintf(tty, "ptyhost: %v\r\n", err)
		tty.Close()
		return code
	}
	tty.Close()
	pid := cmd.Process.Pid
	go func() {
		for s := range sigs {
			_ = unix.Kill(pid, s.(unix.Signal))
		}
	}()
	for {
		// Any child: as pid 1 (no docker-init) the orphans are ours.
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fail("wait: %v", err)
		case got != pid:
			continue
		case ws.Signaled():
			return 128 + int(ws.Signal())
		default:
			return ws.ExitStatus()
		}
	}
}

// handOver sends master to the plugin over conn and waits for its answer.
func handOver(conn *net.UnixConn, master *os.File) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	if err := rc.Control(func(fd uintptr) {
		_, _, werr = conn.WriteMsgUnix([]byte{1}, unix.UnixRights(int(fd)), nil)
	}); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	// Wait for the plugin's word that it has the terminal: should the
	// plugin be gone, the command must not start.
	var ack [1]byte
	if _, err := conn.Read(ack[:]); err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	return nil
}
