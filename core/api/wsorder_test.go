package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// collect reads c's frames until n output bytes came, answering pings,
// pausing now and then (so that its socket fills and the direct writer
// finds no room), and sending input every few frames when typing is set
// (so that it stays the typist). It returns the output.
func (c *rawWS) collect(t *testing.T, n int, pause time.Duration, typing bool, resize bool) ([]byte, error) {
	var got []byte
	frames := 0
	for len(got) < n {
		f, err := c.next(10 * time.Second)
		if err != nil {
			return got, fmt.Errorf("after %d of %d bytes: %w", len(got), n, err)
		}
		frames++
		switch f.opcode {
		case 0x2:
			got = append(got, f.payload...)
		case 0x1:
			var m map[string]any
			if json.Unmarshal(f.payload, &m) != nil {
				return got, fmt.Errorf("text %q", f.payload)
			}
			if m["type"] == "reset" {
				return got, fmt.Errorf("reset after %d bytes: %v", len(got), m)
			}
		case 0x9:
			_ = c.send(true, 0xa, f.payload)
		case 0x8:
			return got, fmt.Errorf("closed after %d bytes: %q", len(got), f.payload)
		}
		if typing && frames%3 == 0 {
			_ = c.send(true, 0x2, []byte("k"))
		}
		if resize && frames%7 == 0 {
			_ = c.send(true, 0x1, fmt.Appendf(nil, `{"type":"resize","cols":%d,"rows":24}`, 80+frames%5))
		}
		if pause > 0 && frames%400 == 0 {
			time.Sleep(pause)
		}
	}
	return got, nil
}

// A typist that stops reading now and then, and a watcher that sends
// resizes, both get the output whole, in order, once, over the raw
// socket: the typist's bytes come by the direct writer and through Next
// in turn. (Whether the typist's socket fills, so that the direct writer
// finds no room, depends on the kernel's buffers; core's direct tests
// cover ErrWouldBlock.)
func TestOrderAcrossDirectAndNext(t *testing.T) {
	t.Run("with watcher", func(t *testing.T) { checkOrder(t, true, 2000) })
	t.Run("alone", func(t *testing.T) { checkOrder(t, false, 8000) })
}

func checkOrder(t *testing.T, withWatcher bool, lines int) {
	api := newAPI(t, Options{WriteTimeout: time.Minute}, nil)
	_, p := api.create(t, "o")
	typist := dialRaw(t, api, "o", "", nil, 65536)
	watcher := dialRaw(t, api, "o", "", nil, 0)
	for _, c := range []*rawWS{typist, watcher} {
		if f, err := c.next(5 * time.Second); err != nil || f.opcode != 1 {
			t.Fatalf("hello: %v", err)
		}
	}
	drained := make(chan struct{})
	defer close(drained)
	go func() {
		for {
			select {
			case <-p.Input():
			case <-drained:
				return
			}
		}
	}()
	var want []byte
	for i := range lines {
		n := 1 + (i*37)%300
		if i%500 == 0 {
			n = 5000
		}
		want = append(want, bytes.Repeat([]byte{byte('!' + i%90)}, n-1)...)
		want = append(want, '\n')
	}
	go func() {
		rest := want
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), 1+(i*37)%300)
			if _, err := p.WriteOutput(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	var gotT, gotW []byte
	var errT, errW error
	wg.Go(func() { gotT, errT = typist.collect(t, len(want), 300*time.Millisecond, true, false) })
	if withWatcher {
		wg.Go(func() { gotW, errW = watcher.collect(t, len(want), 0, false, true) })
	} else {
		watcher.conn.Close()
		gotW = want
	}
	wg.Wait()
	for _, r := range []struct {
		who string
		got []byte
		err error
	}{{"typist", gotT, errT}, {"watcher", gotW, errW}} {
		if r.err != nil {
			t.Errorf("%s: %v", r.who, r.err)
		}
		if !bytes.Equal(r.got, want[:len(r.got)]) {
			i := 0
			for i < len(r.got) && r.got[i] == want[i] {
				i++
			}
			t.Errorf("%s: output differs from byte %d of %d", r.who, i, len(r.got))
		}
	}
}
