package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// The direct terminal. A container that ptyhost creates on a daemon on this
// machine does not get its terminal from the daemon: its command is this
// plugin's own binary, bind mounted read-only at initPath, which opens a
// terminal in the container and hands the terminal's master to the plugin
// over a unix socket bind mounted at socketPath (SCM_RIGHTS), then runs the
// session's command on it (ptyinit_linux.go). The plugin then reads and
// writes the terminal itself, as the HOST plugin does, and the session's
// bytes no longer pass through dockerd and containerd-shim: the daemon
// only creates, starts, stops and reports the exit of the container.
//
// It needs the plugin binary to run in any image: a statically linked
// Linux executable (the Makefile builds it so). With a daemon elsewhere
// (tcp://), a dynamically linked binary, or "terminal": "daemon", sessions
// attach through the daemon as before.

// Terminal modes (config "terminal").
const (
	TerminalDirect = "direct" // the plugin holds the container's terminal
	TerminalDaemon = "daemon" // the daemon's TTY, through its attach stream
)

const (
	// initArg is the first argument that makes the binary pty-init.
	initArg = "pty-init"
	// initDir holds, in the container, the binary and the socket.
	initDir    = "/.ptyhost"
	initPath   = initDir + "/init"
	socketPath = initDir + "/pty.sock"
	// handoffTimeout bounds the wait for the container's terminal after
	// the start.
	handoffTimeout = 30 * time.Second
	// maxInitMessage caps pty-init's message.
	maxInitMessage = 4 << 10
)

// staticSelfOnce is staticSelf, asked once.
var staticSelfOnce = sync.OnceValues(staticSelf)

// staticSelf returns the path of the running binary if it can run in a
// container: a statically linked executable for Linux.
func staticSelf() (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("the plugin runs on %s, not Linux", runtime.GOOS)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", err
	}
	return exe, checkStatic(exe)
}

// checkStatic fails unless the file at path is an executable with no
// program interpreter (a statically linked one).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0, as make build does)", path)
		}
	}
	return nil
}

// directBinary decides a session's terminal mode: it returns the binary
// to run as pty-init in the container, or "" for the daemon's terminal.
// In the default mode the direct terminal is used where it can be; named
// explicitly, a direct terminal that cannot be is a config error.
func (e *Docker) directBinary(s *session) (string, error) {
	if s.cfg.Terminal == TerminalDaemon {
		return "", nil
	}
	bin, err := e.initBinary()
	switch {
	case err != nil:
	case !s.d.local():
		err = errors.New("the daemon is not on this machine (its host is not a unix socket)")
	case !s.cfg.remove():
		// Its command would be pty-init, with a socket that is gone:
		// it could not be started again.
		err = errors.New("a kept container (remove: false) must be startable again")
	}
	switch {
	case err == nil:
		return bin, nil
	case s.cfg.Terminal == TerminalDirect:
		return "", fmt.Errorf("%w: terminal %q: %w", shared.ErrInvalidConfig, TerminalDirect, err)
	}
	s.log.Debug("the terminal goes through the daemon", "reason", err)
	return "", nil
}

// initMounts are what a direct terminal's container mounts: the binary
// run as pty-init and the handoff socket, paths on this machine.
type initMounts struct{ binary, socket string }

// startDirect creates the session's container with pty-init as its
// command, starts it, takes its terminal and records it with running. Any
// failure removes the container.
func (s *session) startDirect(ctx context.Context, e *Docker, img client.ImageInspectResult, bin string) error {
	e.sweepStale()
	h, err := newHandoff(e.runDir, e.handoffName)
	if err != nil {
		return err
	}
	defer h.close()
	size := s.currentSize()
	mounts := &initMounts{binary: bin, socket: h.socket()}
	id, err := s.create(ctx, e.owner, img, size, false, mounts)
	if err != nil {
		return mounts.fault(ctx, err)
	}
	c := &ctrProcess{s: s, id: id, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			c.remove(ctx)
		}
	}()
	if err := c.watch(); err != nil {
		return err
	}
	if _, err := s.d.api.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		return mounts.fault(ctx, s.d.classify("start the container", err))
	}
	term, err := h.receive(ctx, c.exited)
	select {
	case <-c.exited:
		if err != nil && ctx.Err() == nil {
			// pty-init says why on its stderr, which the log driver
			// (none by default) may not keep.
			err = fmt.Errorf("%w: %w (exit code %d): the container's command is this plugin's binary as pty-init (docs/environments.md, terminal)", errDirectFailed, err, c.code)
		}
	default:
		if err != nil && ctx.Err() == nil && !errors.Is(err, shared.ErrInvalidArgument) {
			err = fmt.Errorf("%w: %w", errDirectFailed, err)
		}
	}
	if err != nil {
		return err
	}
	c.term = term
	// Everything in the container ends with its pid 1, so the terminal
	// reads EIO; this only makes sure Read cannot outlive an exit the
	// daemon reported. A lost daemon is no exit: the terminal does not
	// need the daemon, and the container may run on (live restore).
	go func() {
		<-c.exited
		if c.waitErr == nil {
			term.ChildExited()
		}
	}()
	ok = true
	s.log.Debug("container started, terminal held", "container", shortID(c.id), "image", s.cfg.Image)
	s.running(c, term, size)
	return nil
}

// handoff is where one container hands its terminal over: a unix socket
// in a directory of its own that only the plugin's user can enter; the
// socket itself is bind mounted into the container.
type handoff struct {
	dir string
	ln  *net.UnixListener
}

// errNoHandoff wraps a failure to make the handoff socket (a parent
// directory that is read-only, or whose path is too long for a socket).
var errNoHandoff = fmt.Errorf("%w: no handoff socket", errDirectFailed)

// handoffPrefix begins the name of every handoff directory.
const handoffPrefix = "ptyhost-pty-"

// handoffName returns how the names of the handoff directories of the
// plugin process owner (an ownerID) begin: handoffPrefix, then
// "PID.START-" in base 36 (short: the socket's path must stay under about
// 100 bytes), then MkdirTemp's random part. So a plugin can tell the
// directories of plugin processes that are gone (sweepHandoffs), as it
// tells their containers (ownerGone); the directories are this machine's,
// so its name and boot need not be in it. Without a start time (no
// /proc) the name says nothing of its owner.
func handoffName(owner string) string {
	f := strings.Split(owner, "/")
	if len(f) < 3 {
		return handoffPrefix
	}
	pid, err1 := strconv.ParseInt(f[1], 10, 64)
	start, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return handoffPrefix
	}
	return handoffPrefix + strconv.FormatInt(pid, 36) + "." + strconv.FormatInt(start, 36) + "-"
}

// newHandoff listens on a new socket in a new directory under parent,
// whose name begins with name (handoffName). Failures wrap errNoHandoff.
func newHandoff(parent, name string) (*handoff, error) {
	dir, err := os.MkdirTemp(parent, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoHandoff, err)
	}
	sock := filepath.Join(dir, "pty.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err == nil {
		// The container's user, whatever its uid, connects; the
		// directory (0700) keeps everyone else out.
		err = os.Chmod(sock, 0o666)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w: %w", errNoHandoff, err)
	}
	return &handoff{dir: dir, ln: ln}, nil
}

// handoffSweepAge is how old a handoff directory must be for
// sweepHandoffs to remove it: far longer than a handoff takes (the
// container's create and start, then handoffTimeout), so that a live
// handoff of a plugin that merely looks gone — one in another PID
// namespace sharing the directory, where its pid means another process —
// is never taken.
const handoffSweepAge = 10 * time.Minute

// sweepHandoffs removes the handoff directories under parent that plugin
// processes now gone left behind — one killed while a container was
// handing its terminal over never removed its own — logging each. Those of
// live plugin processes, those younger than handoffSweepAge, other users',
// those whose name does not say whose they are, and what is not a
// directory, are left alone.
func sweepHandoffs(parent string, log hclog.Logger) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, de := range entries {
		rest, named := strings.CutPrefix(de.Name(), handoffPrefix)
		owner, _, dashed := strings.Cut(rest, "-")
		f := strings.Split(owner, ".")
		if !named || !dashed || !de.IsDir() || len(f) != 2 {
			continue // a symlink is not a directory here
		}
		pid, err1 := strconv.ParseInt(f[0], 36, 32)
		start, err2 := strconv.ParseInt(f[1], 36, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if gone, known := pidGone(int(pid), strconv.FormatInt(start, 10)); !gone || !known {
			continue
		}
		if fi, err := de.Info(); err != nil || time.Since(fi.ModTime()) < handoffSweepAge {
			continue
		}
		dir := filepath.Join(parent, de.Name())
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil || st.Uid != uint32(os.Geteuid()) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("could not remove the handoff directory of a plugin process that is gone", "dir", dir, "err", err)
			continue
		}
		log.Info("removed the handoff directory of a plugin process that is gone", "dir", dir)
	}
}

// sweepStale runs sweepHandoffs on the run directory before a handoff, at
// most once every handoffSweepAge.
func (e *Docker) sweepStale() {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	if !e.sweptAt.IsZero() && time.Since(e.sweptAt) < handoffSweepAge {
		return
	}
	e.sweptAt = time.Now()
	sweepHandoffs(e.runDir, e.logger)
}

// socket is the socket's path on this machine.
func (h *handoff) socket() string { return filepath.Join(h.dir, "pty.sock") }

// close stops listening and removes the socket and its directory.
func (h *handoff) close() {
	h.ln.Close()
	os.RemoveAll(h.dir)
}

// receive waits for the container's pty-init to connect and hand over the
// terminal's master, answers it, and returns the terminal. It gives up
// when ctx ends, when exited is closed (the container is gone), or after
// handoffTimeout. pty-init that cannot start the command says why instead
// (an error wrapping shared.ErrInvalidArgument). Anything but one
// terminal master is refused.
func (h *handoff) receive(ctx context.Context, exited <-chan struct{}) (*shared.Terminal, error) {
	deadline := time.Now().Add(handoffTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := h.ln.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-exited:
		case <-stop:
			return
		}
		_ = h.ln.SetDeadline(time.Now())
	}()
	conn, err := h.ln.AcceptUnix()
	if err != nil {
		select {
		case <-exited:
			return nil, errors.New("the container exited before it handed over its terminal")
		default:
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("the container did not hand over its terminal: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	term, err := readTerminal(conn)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{1}); err != nil {
		term.Close()
		return nil, fmt.Errorf("answering the container's init: %w", err)
	}
	return term, nil
}

// readTerminal reads pty-init's one message: a terminal's master (one fd)
// or a reason it cannot start the command.
func readTerminal(conn *net.UnixConn) (*shared.Terminal, error) {
	msg := make([]byte, maxInitMessage)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to see extra fds
	n, oobn, flags, _, err := conn.ReadMsgUnix(msg, oob)
	if err != nil {
		return nil, fmt.Errorf("reading the container's terminal: %w", err)
	}
	var fds []int
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("the container's init sent a bad message: %w", err)
		}
		for _, c := range cmsgs {
			if got, err := unix.ParseUnixRights(&c); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if len(fds) != 1 || flags&unix.MSG_CTRUNC != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		if len(fds) == 0 && n > 0 && msg[0] == 'E' {
			return nil, fmt.Errorf("%w: %s", shared.ErrInvalidArgument, strings.ToValidUTF8(string(msg[1:n]), "?"))
		}
		return nil, fmt.Errorf("the container's init sent %d file descriptors, want its terminal's alone", len(fds))
	}
	unix.CloseOnExec(fds[0])
	return shared.NewTerminal(os.NewFile(uintptr(fds[0]), "container terminal"))
}
