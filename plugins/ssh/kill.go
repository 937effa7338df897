package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// Ending an SSH session: Kill and Close, down to the remote process group.

// Kill implements shared.PTY. It ends the remote command's whole process
// group, not only its leader: a background job that ignores SIGHUP (as
// nohup makes it) would otherwise outlive the session. Kill sends SIGHUP,
// as a hangup would, by a signal request (see signal) and by `kill` on a
// second session channel of the connection (signalGroup); it returns at
// once. After killGrace a goroutine sends SIGKILL to the group by `kill`,
// and, if the leader still runs, by a signal request, and closes the
// channel (which makes sshd hang up the terminal). The second channel is
// what reaches a job that ignored the SIGHUP: once the leader has ended,
// sshd takes no more signal requests for the session, yet its jobs may
// still run. The grace is at most half the time left to ctx's deadline,
// so that SIGKILL follows in time when the plugin is stopping; Close cuts
// it short.
func (p *sshPTY) Kill(ctx context.Context) error {
	grace := killGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = max(0, min(grace, time.Until(dl)/2))
	}
	select {
	case <-p.exited:
		return nil
	case <-p.closed:
		return nil
	default:
	}
	p.killOnce.Do(func() {
		p.signal(ssh.SIGHUP)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.signalGroup("HUP")
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-p.closed: // Close kills the group itself
				return
			case <-t.C:
			}
			p.signalGroup("KILL")
			p.groupDone.Store(true)
			select {
			case <-p.exited:
			default:
				p.signal(ssh.SIGKILL)
				_ = p.sess.Close()
			}
		}()
	})
	return nil
}

// signal sends a signal request. OpenSSH 7.9 and later deliver it while
// the session's process runs (to its process group, in the versions
// tested), and refuse it after.
func (p *sshPTY) signal(sig ssh.Signal) {
	p.sentSignal.Store(sig)
	if err := p.sess.Signal(sig); err != nil {
		p.log.Debug("signal request failed", "signal", sig, "error", err)
	}
}

// signalGroup sends sig (a signal name such as "KILL") to the session's
// remote process group, and, where the remote has pkill, to every process
// of its session (a job-control shell puts each job in a group of its
// own), by running kill on a second session channel as the same user. A
// failure (the connection lost, or the server refusing one more channel
// on a full connection) is logged: the signal request and the hangup
// still reach a running leader. The group id is the leader's pid; it
// could be reused once the whole group has ended, which is why only Kill
// (within its grace) and Close of a running or killed session signal it.
func (p *sshPTY) signalGroup(sig string) {
	if p.pgid <= 1 {
		return
	}
	id := strconv.Itoa(p.pgid)
	cmd := "kill -s " + sig + " -- -" + id + " 2>/dev/null; " +
		"if command -v pkill >/dev/null 2>&1; then pkill -" + sig + " -s " + id + "; fi; :"
	if err := p.conn.run(cmd, closeWait); err != nil {
		p.log.Debug("signalling the remote process group failed", "signal", sig, "pgid", p.pgid, "error", err)
	}
}

// run runs cmd on a session channel of its own on c, and waits (at most
// timeout) for its turn to open a channel, for the channel to open and
// then for cmd to end: a connection gone silent must not hold a Kill, or
// a Close, for as long as it takes to be found dead. A channel the server
// opens after that is closed at once. The channel counts as open while it
// runs, as it holds one of the server's sessions. On a stuck connection
// it gives up at once: the stalled open holds the turn until the
// connection closes, which a connection kept for its sessions does only
// once they are closed, so a wait for it would park a goroutine for each
// signal until then.
func (c *conn) run(cmd string, timeout time.Duration) error {
	type opened struct {
		sess *ssh.Session
		err  error
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ch := make(chan opened, 1)
	go func() {
		if err := c.lockOpen(ctx); err != nil {
			ch <- opened{err: err}
			return
		}
		sess, err := c.link.client.NewSession()
		if err == nil {
			c.sessionOpened()
		}
		c.unlockOpen()
		ch <- opened{sess, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-ctx.Done():
		go func() {
			if late := <-ch; late.err == nil {
				_ = late.sess.Close()
				c.sessionClosed()
			}
		}()
		return fmt.Errorf("the server opened no channel within %v", timeout)
	}
	switch {
	case errors.Is(o.err, context.DeadlineExceeded):
		return fmt.Errorf("no turn to open a channel within %v: another open is under way", timeout)
	case o.err != nil:
		return o.err
	}
	defer c.sessionClosed()
	defer o.sess.Close()
	t := time.AfterFunc(timeout, func() { _ = o.sess.Close() })
	defer t.Stop()
	return o.sess.Run(cmd)
}

// Close implements shared.PTY: SIGKILL to the session's process group if
// the session still runs or a Kill is under way (signalGroup), close the
// channel, end a blocked Read, wait (briefly) for the server to confirm,
// and give the connection back to the pool.
func (p *sshPTY) Close() error {
	p.closeOnce.Do(func() {
		p.shut()
		p.conn.pool.sessionEnded(p.conn)
	})
	return nil
}

// shut is Close but for giving back the connection: it ends the session
// and counts its channel closed.
func (p *sshPTY) shut() {
	close(p.closed)
	p.killOnce.Do(func() {}) // no Kill from now on
	_, killed := p.sentSignal.Load().(ssh.Signal)
	select {
	case <-p.exited:
		// A Kill under way: its group may outlive the leader.
		if killed && !p.groupDone.Load() {
			p.signalGroup("KILL")
		}
	default:
		p.signalGroup("KILL")
		p.signal(ssh.SIGKILL)
	}
	_ = p.sess.Close()
	p.out.closeRead(errSessionClosed)
	t := time.NewTimer(closeWait)
	select {
	case <-p.exited:
	case <-t.C:
		p.log.Debug("the server did not confirm the session's end; leaving it to the connection")
	}
	t.Stop()
	p.wg.Wait()
	p.conn.sessionClosed()
}
