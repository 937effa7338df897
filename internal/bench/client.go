package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// wsClient is one WebSocket client attached to a session. Its methods are
// called from one goroutine at a time, except that conn may be written
// from another.
type wsClient struct {
	conn *wsproto.Conn
	res  clientResult
	last time.Time     // when the last output byte arrived
	exit *wsproto.Exit // the exit message, once received
	// stamp, set before drain, has drain note in arrivals when each
	// output byte arrived: an echo's readers, one byte per keystroke.
	stamp    bool
	arrivals []time.Time
}

// attach opens a WebSocket to session id and reads its hello.
func (s *server) attach(ctx context.Context, id string) (*wsClient, error) {
	base := s.base
	if s.via != nil {
		base = s.via.base // another node of the cluster, which proxies
	}
	conn, err := wsproto.Dial(ctx, wsproto.WSURL(base)+wsproto.AttachPath(id), wsproto.DialOptions{ReadLimit: -1})
	if err != nil {
		return nil, fmt.Errorf("attaching: %w", err)
	}
	return &wsClient{conn: conn}, nil
}

func (c *wsClient) close() { _ = c.conn.Close() }

// next reads messages until output arrives and returns it. Control
// messages are handled on the way; after the exit message it returns
// io.EOF.
func (c *wsClient) next(ctx context.Context) ([]byte, error) {
	for {
		f, err := c.conn.Next(ctx)
		if err != nil {
			return nil, err
		}
		if f.Kind == wsproto.FrameOutput {
			return f.Data, nil
		}
		switch m := f.Msg; m.Type {
		case "":
			return nil, fmt.Errorf("bad control message %q", f.Data)
		case wsproto.TypeExit:
			e := m.Exit()
			c.exit = &e
			return nil, io.EOF
		case wsproto.TypeReset:
			c.res.Resets++
		case wsproto.TypeError:
			return nil, fmt.Errorf("the server rejected our input: %s", m.Message)
		}
	}
}

// awaitReady reads until the generator's ready announcement has arrived.
func (c *wsClient) awaitReady(ctx context.Context) error {
	var got []byte
	for len(got) < len(ready) {
		p, err := c.next(ctx)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the session exited before the generator was ready: %s", c.exitString())
		}
		if err != nil {
			return fmt.Errorf("waiting for the generator: %w", err)
		}
		got = append(got, p...)
	}
	if string(got) != ready {
		return fmt.Errorf("the generator said %q, want %q", got, ready)
	}
	return nil
}

// drain counts output until the exit message.
func (c *wsClient) drain(ctx context.Context) error {
	for {
		p, err := c.next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		c.res.Bytes += int64(len(p))
		c.res.Reads++
		c.last = time.Now()
		if c.stamp {
			for range p {
				c.arrivals = append(c.arrivals, c.last)
			}
		}
	}
}

// exitString describes the exit message; "" for a clean exit.
func (c *wsClient) exitString() string {
	switch {
	case c.exit == nil:
		return "no exit message"
	case c.exit.Code != 0 || c.exit.Signal != "" || c.exit.Reason != "":
		return fmt.Sprintf("exit code %d, signal %q, reason %q", c.exit.Code, c.exit.Signal, c.exit.Reason)
	}
	return ""
}

// flood runs `gen flood n` in a session in at with clients attached, all
// of them ready before client 0 sends the go byte, and times each client from
// that byte to the last byte it receives. cpu, when not nil, measures the
// server's and the plugin's CPU over the same span.
func (s *server) flood(ctx context.Context, at place, n int64, clients int, cpu *cpuMeter) (floodResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	id, err := s.createSession(ctx, at, at.argv("flood", strconv.FormatInt(n, 10)))
	if err != nil {
		return floodResult{}, err
	}
	defer s.deleteSession(id)

	cs := make([]*wsClient, 0, clients)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range clients {
		c, err := s.attach(ctx, id)
		if err != nil {
			return floodResult{}, err
		}
		cs = append(cs, c)
	}
	for i, c := range cs {
		if err := c.awaitReady(ctx); err != nil {
			return floodResult{}, fmt.Errorf("client %d: %w", i, err)
		}
	}

	errs := make(chan error, len(cs))
	for i, c := range cs {
		go func() {
			if err := c.drain(ctx); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			errs <- nil
		}()
	}
	cpu.start()
	start := time.Now()
	err = cs[0].conn.Input(ctx, []byte("g"))
	if err != nil {
		cancel()
		err = fmt.Errorf("sending the go byte: %w", err)
	}
	for range cs {
		if e := <-errs; e != nil && err == nil {
			err = e
			cancel() // the others would wait for the timeout
		}
	}
	cpu.stop()
	if err != nil {
		return floodResult{}, err
	}

	want := n - int64(len(ready))
	res := make([]clientResult, len(cs))
	for i, c := range cs {
		if e := c.exitString(); e != "" {
			return floodResult{}, fmt.Errorf("client %d: the generator failed: %s", i, e)
		}
		c.res.finish(start, c.last)
		res[i] = c.res
	}
	return newFloodResult(want, res), nil
}

// echo types keys keystrokes, one at a time, into `gen echo` in a session
// in at and times each until its echo arrives over the WebSocket. With
// readers > 0, that many more clients are attached to the session and
// read everything it writes meanwhile (each must receive every echoed
// byte). With procs, it also counts the core's and the plugin's context
// switches per keystroke.
func (s *server) echo(ctx context.Context, at place, keys int, procs *procSet, readers int) (echoResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	id, err := s.createSession(ctx, at, at.argv("echo"))
	if err != nil {
		return echoResult{}, err
	}
	defer s.deleteSession(id)
	c, err := s.attach(ctx, id)
	if err != nil {
		return echoResult{}, err
	}
	defer c.close()
	if err := c.awaitReady(ctx); err != nil {
		return echoResult{}, err
	}
	others, readErrs, err := s.attachReaders(ctx, id, readers)
	defer func() {
		for _, o := range others {
			o.close()
		}
	}()
	if err != nil {
		return echoResult{}, err
	}

	lat := make([]time.Duration, 0, keys)
	sent := make([]time.Time, 0, warmupKeys+keys)
	var core0, plugin0 int64
	for i := range warmupKeys + keys {
		if i == warmupKeys && procs != nil {
			if core0, plugin0, err = procs.switches(); err != nil {
				return echoResult{}, err
			}
		}
		key := []byte{echoKey(i)}
		t0 := time.Now()
		sent = append(sent, t0)
		if err := c.conn.Input(ctx, key); err != nil {
			return echoResult{}, err
		}
		p, err := c.next(ctx)
		dt := time.Since(t0)
		if err != nil {
			return echoResult{}, fmt.Errorf("keystroke %d: %w", i, err)
		}
		if !bytes.Equal(p, key) {
			return echoResult{}, fmt.Errorf("keystroke %d: sent %q, got %q back", i, key, p)
		}
		if i >= warmupKeys {
			lat = append(lat, dt)
		}
	}
	res := newEchoResult(lat)
	if procs != nil {
		core, plugin, err := procs.switches()
		if err != nil {
			return echoResult{}, err
		}
		res.CoreSwitches = float64(core-core0) / float64(keys)
		res.PluginSwitches = float64(plugin-plugin0) / float64(keys)
	}
	if err := c.conn.Input(ctx, []byte("q")); err != nil {
		return echoResult{}, err
	}
	if _, err := c.next(ctx); !errors.Is(err, io.EOF) {
		return echoResult{}, fmt.Errorf("waiting for the exit message: got output or %v", err)
	}
	if e := c.exitString(); e != "" {
		return echoResult{}, fmt.Errorf("the generator failed: %s", e)
	}
	want := int64(warmupKeys + keys)
	var lag []time.Duration
	for range others {
		if err := <-readErrs; err != nil {
			return echoResult{}, err
		}
	}
	for i, o := range others {
		if o.res.Bytes != want || o.res.Resets > 0 {
			return echoResult{}, fmt.Errorf("reader %d received %d bytes (%d resets), want %d", i+1, o.res.Bytes, o.res.Resets, want)
		}
		for k := warmupKeys; k < len(sent); k++ {
			lag = append(lag, o.arrivals[k].Sub(sent[k]))
		}
	}
	if len(lag) > 0 {
		w := newEchoResult(lag)
		res.ReadersP50, res.ReadersP99 = w.P50, w.P99
	}
	return res, nil
}

// attachReaders attaches n clients to session id, waits for each to have
// the generator's ready line, and starts each reading until the exit
// message; each reader's result arrives on the channel when it is done.
func (s *server) attachReaders(ctx context.Context, id string, n int) ([]*wsClient, <-chan error, error) {
	errs := make(chan error, n)
	var cs []*wsClient
	for i := range n {
		c, err := s.attach(ctx, id)
		if err != nil {
			return cs, nil, fmt.Errorf("reader %d: %w", i+1, err)
		}
		cs = append(cs, c)
		c.stamp = true
		if err := c.awaitReady(ctx); err != nil {
			return cs, nil, fmt.Errorf("reader %d: %w", i+1, err)
		}
	}
	for i, c := range cs {
		go func() {
			if err := c.drain(ctx); err != nil {
				errs <- fmt.Errorf("reader %d: %w", i+1, err)
				return
			}
			errs <- nil
		}()
	}
	return cs, errs, nil
}
