// Package rawio reads and writes the descriptors on a session's byte path
// (terminals, the byte channel, a WebSocket's socket) with raw system
// calls.
//
// Go's read and write system calls tell the runtime that the thread may
// block (syscall.Syscall's entersyscall). When every P was idle just
// before, as it is between two keystrokes, that wakes the runtime's
// monitor thread (sysmon), which then polls every 20 µs for a while: on a
// machine with few CPUs that thread's wake-ups and the futex call that
// starts them sit on a keystroke's echo, a few in each process. A read or
// write of a non-blocking descriptor never blocks, so it may be made raw
// (syscall.RawSyscall): the runtime is not told and the monitor sleeps on.
// Waiting for a descriptor still goes through Go's poller
// (syscall.RawConn), with its deadlines and Close.
//
// No raw call may block: it would hold its thread without the runtime
// knowing, and the whole process at the next garbage collection. Sockets
// are read and written with MSG_DONTWAIT, which never waits; files only
// while they are in non-blocking mode, checked just before the call (and
// not again by ReadNext), since the mode belongs to the open file, which
// other processes may share and switch (ErrBlocking). A switch between
// the check and the call is not caught, so a file shared with a process
// that is not trusted is written with an ordinary system call (WriteNow,
// where WriteNowRaw is the raw one).
// On systems other than Linux the same functions
// make ordinary system calls. Reads made raw are not seen by the race
// detector.
package rawio
