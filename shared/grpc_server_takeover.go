package shared

import (
	"fmt"
	"sync"
	"time"
)

// takeoverInputWait is how long a new attachment's input waits for the
// input of the attachments before it that the plugin still applies
// (inputDrain) before the rest of theirs is dropped. Input held longer
// than a few seconds looks like a hung terminal to whoever types it, and a
// program that reads its input at all takes what a byte channel holds (a
// socket's buffer, some hundreds of KiB) well within that; what a program
// has not read after it is a paste to a program that was not reading for
// seconds, which may never read it, and the new host's keystrokes must not
// wait for that for ever.
const takeoverInputWait = 3 * time.Second

// turnConfig is how an attachment's input waits its turn (waitTurn).
type turnConfig struct {
	// wait is takeoverInputWait, which tests shorten.
	wait time.Duration
	// waiting, a test hook, is called when an attachment's input starts
	// to wait.
	waiting func()
}

// inputDrain is what an attachment's host wrote on its byte channel that
// the input pump still applies after the attachment stopped serving the
// session, detached or taken over: the frames at the plugin's end of the
// channel then, no more (inputSource). The input of an attachment made
// while a drain is under way waits for it (waitTurn), up to
// takeoverInputWait, so that the two do not interleave; past that the
// drain is cut and the rest of its input is dropped. A session closed
// drops it at once: input refuses every frame then (errSessionClosed),
// and the pump reads what is left without waiting.
type inputDrain struct {
	// done is closed when the pump ended: it applied, or dropped, all of
	// the input.
	done chan struct{}
	// cut is closed when a later attachment's input stopped waiting: the
	// rest is dropped (input, under inputMu, checks it).
	cut     chan struct{}
	cutOnce sync.Once
	// ended is set, under the ring's lock, when the pump ended.
	ended bool
}

func newInputDrain() *inputDrain {
	return &inputDrain{done: make(chan struct{}), cut: make(chan struct{})}
}

// cutOff drops the rest of d's input.
func (d *inputDrain) cutOff() {
	d.cutOnce.Do(func() { close(d.cut) })
}

// isCut reports whether d's rest is dropped.
func (d *inputDrain) isCut() bool {
	select {
	case <-d.cut:
		return true
	default:
		return false
	}
}

// errInputCut is what input returns for a frame of a drain that was cut.
var errInputCut = fmt.Errorf("the input waited for too long behind a takeover")

// waitTurn waits, before a's first input or resize is applied, for the
// drains under way when a was made (a.before) to end, so that a's input
// comes after theirs. Once s.turns.wait passed it stops waiting and cuts
// those drains: the rest of their input is dropped. It returns at once if
// own, a's own drain, is cut meanwhile, or the session is closed (its
// input is dropped then anyway); without own (a's stream carries its
// input), also once a stops serving: its frame is dropped then
// (pumpInput), and no later attachment waits for it. It reports whether
// there were drains to wait for: false after a's first frame. Only a's
// input pump calls it.
func (s *serverSession) waitTurn(a *attachment, own *inputDrain) bool {
	before := a.before
	if before == nil {
		return false
	}
	a.before = nil
	var ownCut, gone <-chan struct{}
	if own != nil {
		ownCut = own.cut
	} else {
		gone = a.gone
	}
	var expired <-chan time.Time
	for _, d := range before {
		select {
		case <-d.done:
			continue
		default:
		}
		if expired == nil {
			t := time.NewTimer(s.turns.wait)
			defer t.Stop()
			expired = t.C
			if s.turns.waiting != nil {
				s.turns.waiting()
			}
		}
		select {
		case <-d.done:
		case <-ownCut:
			return true
		case <-gone:
			return true
		case <-s.ctx.Done():
			return true
		case <-expired:
			for _, d := range before {
				d.cutOff()
			}
			return true
		}
	}
	return true
}
