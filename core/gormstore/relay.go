package gormstore

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ptyhost/ptyhost/core"
)

// The nodes' events over PostgreSQL LISTEN/NOTIFY. Each node's Relay sends
// the events of its own sessions as notifications on one channel, from one
// goroutine, so that they arrive in the order it sent them; and it listens
// on that channel on a connection of its own, delivering the other nodes'
// notifications. A notification's payload is the event as JSON, with the
// sending relay's origin (drawn at random per relay), which is how a relay
// skips its own. The node_lost events (nodelost.go) are notified by the
// database transaction that records the sessions lost, with no origin, so
// that every node, the one that recorded them too, delivers them once.
//
// PostgreSQL delivers a notification to the connections listening when it
// is committed, and to no later one: a relay whose listening connection
// broke has missed what was sent meanwhile, so after it listens again it
// delivers core.EventsLost, and subscribers list the sessions again. A
// relay that could not send (the database is down, or its queue is full)
// sends an events_lost notification first when it sends again.

// channelExpr is the SQL expression of the notification channel of the
// nodes' events. Channels are the database's, not a schema's: the
// schema's name is part of the channel's, so that clusters kept in
// several schemas of one database (the tests' among them) each hear their
// own. It is hashed, since a channel's name is at most 63 bytes.
const channelExpr = "'ptyhost_events_' || left(md5(current_schema()), 16)"

// notifySQL sends a notification on the channel (channelExpr).
const notifySQL = "SELECT pg_notify(" + channelExpr + ", ?)"

// maxPayload bounds a notification's payload: PostgreSQL refuses 8000
// bytes or more. Only an event's error text can make one that long; it is
// cut to fit (the session's record keeps the whole reason).
const maxPayload = 7900

const (
	// relayQueue is how many events a relay holds while it sends; past it,
	// they are dropped and the other nodes get events_lost.
	relayQueue = 1024
	// sendTimeout bounds one notification's send.
	sendTimeout = 5 * time.Second
	// drainTimeout bounds sending what is queued when the relay stops.
	drainTimeout = 2 * time.Second
	// listenRetryMin and listenRetryMax bound the wait between two
	// attempts to listen again.
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// notification is a notification's payload: an event, flattened.
type notification struct {
	// Origin is the relay that sent it; empty when the database sent it
	// (node_lost), which no relay skips.
	Origin     string    `json:"origin,omitempty"`
	Type       string    `json:"type"`
	SessionID  string    `json:"session_id,omitempty"`
	Node       string    `json:"node,omitempty"`
	Time       time.Time `json:"time"`
	ExitCode   *int      `json:"exit_code,omitempty"`
	ExitSignal string    `json:"exit_signal,omitempty"`
	ExitReason string    `json:"exit_reason,omitempty"`
	Error      string    `json:"error,omitempty"`
}

func notificationOf(origin string, e core.Event) notification {
	n := notification{Origin: origin, Type: string(e.Type), SessionID: e.SessionID, Node: e.Node, Time: e.Time}
	if e.Exit != nil {
		code := e.Exit.Code
		n.ExitCode, n.ExitSignal, n.ExitReason = &code, e.Exit.Signal, e.Exit.Reason
	}
	if e.Err != nil {
		n.Error = e.Err.Error()
	}
	return n
}

func (n notification) event() core.Event {
	e := core.Event{Type: core.EventType(n.Type), SessionID: n.SessionID, Node: n.Node, Time: n.Time}
	if n.ExitCode != nil {
		e.Exit = &core.ExitStatus{Code: *n.ExitCode, Signal: n.ExitSignal, Reason: n.ExitReason}
	}
	if n.Error != "" {
		e.Err = errors.New(n.Error)
	}
	return e
}

// payload encodes n within maxPayload bytes, cutting its error text and
// its exit reason (which often repeats it), the longer first, if need be.
func (n notification) payload() (string, error) {
	for {
		b, err := json.Marshal(n)
		if err != nil {
			return "", err
		}
		if len(b) <= maxPayload {
			return string(b), nil
		}
		over := len(b) - maxPayload
		e, r := jsonLen(n.Error), jsonLen(n.ExitReason)
		text, tlen, other := &n.Error, e, r
		if r > e {
			text, tlen, other = &n.ExitReason, r, e
		}
		if len(*text) <= len(cutMark) {
			return "", fmt.Errorf("an event of %d bytes does not fit a notification", len(b))
		}
		// Down to the other text's length first, then half of what is
		// over from each in turn; the cut counts the text's JSON escapes,
		// in proportion, so that escaped text is not cut much more than
		// it must be.
		want := min(over, max(tlen-other, (over+1)/2))
		drop := want*len(*text)/tlen + len(cutMark) + 1
		cut := (*text)[:max(0, len(*text)-drop)]
		for !utf8.ValidString(cut) {
			cut = cut[:len(cut)-1]
		}
		*text = strings.TrimSpace(cut) + cutMark
	}
}

// jsonLen returns the length of s as a JSON string, without its quotes.
func jsonLen(s string) int {
	b, _ := json.Marshal(s)
	return len(b) - 2
}

// cutMark ends a text payload cut.
const cutMark = " …(cut)"

// Relay carries events between the nodes of a cluster over PostgreSQL
// LISTEN/NOTIFY: core.Options.Relay. Make one per node with NewRelay; the
// manager runs it (Receive) for as long as it runs. It is safe for
// concurrent use.
type Relay struct {
	s      *DB
	origin string
	log    *slog.Logger
	queue  chan core.Event
	// dropped: events were not sent; the next notification sent is
	// events_lost.
	dropped atomic.Bool
}

var _ core.EventRelay = (*Relay)(nil)

// NewRelay returns a relay for node's events. It needs PostgreSQL through
// its pgx driver (Open's); on another database the error wraps
// ErrNodesUnsupported.
func (s *DB) NewRelay(node string) (*Relay, error) {
	if !s.postgres() {
		return nil, fmt.Errorf("store: relay events: %w", ErrNodesUnsupported)
	}
	return &Relay{
		s: s, origin: rand.Text(), queue: make(chan core.Event, relayQueue),
		log: s.log.With("component", "events", "node", node),
	}, nil
}

// Send queues e for the other nodes; a full queue drops it.
func (r *Relay) Send(e core.Event) {
	select {
	case r.queue <- e:
	default:
		if !r.dropped.Swap(true) {
			r.log.Warn("the queue of events for the other nodes is full; their subscribers will be told events were lost")
		}
	}
}

// Receive sends this node's events and delivers the other nodes' until
// ctx ends, then sends what is queued, within a short bound. It listens on
// a connection of its own, made again (with backoff) whenever it breaks;
// after each new one, but the first made at once, it delivers
// core.EventsLost.
func (r *Relay) Receive(ctx context.Context, deliver func(core.Event)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.sendLoop(ctx) })

	gap := false // events may have been missed since Receive began
	wait := listenRetryMin
	for ctx.Err() == nil {
		listening := false
		err := r.listen(ctx, func() {
			listening = true
			if gap {
				deliver(core.Event{Type: core.EventsLost, Time: time.Now().UTC()})
			}
		}, deliver)
		if ctx.Err() != nil {
			return
		}
		gap = true
		if listening {
			wait = listenRetryMin
		}
		r.log.Warn("listening for the other nodes' events failed; listening again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// listen takes a connection of the pool for itself, listens on the
// channel, calls listening, and delivers the other relays'
// notifications until the connection breaks or ctx ends. The connection
// is then closed, not given back to the pool: it listens still.
func (r *Relay) listen(ctx context.Context, listening func(), deliver func(core.Event)) error {
	sqlDB, err := r.s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listening needs the pgx driver, not %T", dc)
		}
		pc := sc.Conn()
		var channel string
		if err := pc.QueryRow(ctx, "SELECT "+channelExpr).Scan(&channel); err != nil {
			return fmt.Errorf("%w: naming the channel: %w", driver.ErrBadConn, err)
		}
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			return fmt.Errorf("%w: LISTEN: %w", driver.ErrBadConn, err)
		}
		listening()
		for {
			msg, err := pc.WaitForNotification(ctx)
			if err != nil {
				// ErrBadConn makes database/sql close the connection.
				return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
			}
			var n notification
			if err := json.Unmarshal([]byte(msg.Payload), &n); err != nil {
				r.log.Warn("a notification of events that is not one; ignored", "err", err)
				continue
			}
			if n.Origin == r.origin && n.Origin != "" {
				continue // this node's own: published here already
			}
			deliver(n.event())
		}
	})
}

// sendLoop sends the queued events, in order, until ctx ends, then what is
// still queued within drainTimeout.
func (r *Relay) sendLoop(ctx context.Context) {
	for {
		select {
		case e := <-r.queue:
			r.send(ctx, e)
		case <-ctx.Done():
			r.drain(ctx)
			return
		}
	}
}

// drain sends what is queued, within drainTimeout from now.
func (r *Relay) drain(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	for {
		select {
		case e := <-r.queue:
			r.send(dctx, e)
		default:
			return
		}
	}
}

// send notifies e, preceded by events_lost if events were dropped since
// the last send. An event that cannot be sent is dropped, and counted so.
func (r *Relay) send(ctx context.Context, e core.Event) {
	if r.dropped.Load() {
		lost := notification{Origin: r.origin, Type: string(core.EventsLost), Node: e.Node, Time: time.Now().UTC()}
		if err := r.notify(ctx, lost); err != nil {
			return // e is dropped too; dropped stays set
		}
		r.dropped.Store(false)
	}
	if err := r.notify(ctx, notificationOf(r.origin, e)); err != nil {
		if !r.dropped.Swap(true) {
			r.log.Warn("sending an event to the other nodes failed; their subscribers will be told events were lost", "err", err)
		}
	}
}

// notify sends one notification within sendTimeout.
func (r *Relay) notify(ctx context.Context, n notification) error {
	p, err := n.payload()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	return r.s.db.WithContext(ctx).Exec(notifySQL, p).Error
}
