package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeRelay is an EventRelay whose sent events are kept and whose received
// ones come from in.
type fakeRelay struct {
	in       chan Event
	mu       sync.Mutex
	sent     []Event
	received chan struct{} // closed when Receive returns
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{in: make(chan Event), received: make(chan struct{})}
}

func (r *fakeRelay) Send(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, e)
}

func (r *fakeRelay) Receive(ctx context.Context, deliver func(Event)) {
	defer close(r.received)
	for {
		select {
		case e := <-r.in:
			deliver(e)
		case <-ctx.Done():
			return
		}
	}
}

func (r *fakeRelay) sentEvents() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.sent...)
}

// nextEvent returns the next event of evs, failing after 5 s.
func nextEvent(t *testing.T, evs <-chan Event) Event {
	t.Helper()
	select {
	case e := <-evs:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return Event{}
	}
}

// TestRelayedEvents: a node's own events reach its subscribers once,
// naming the node, and go out through the relay; the other nodes' events,
// and the relay's events_lost, reach its subscribers as the relay
// delivers them. The relay runs until the manager closes.
func TestRelayedEvents(t *testing.T) {
	relay := newFakeRelay()
	h := newHarness(t, func(o *Options) { o.NodeName, o.Relay = "a", relay })
	evs := h.m.Subscribe(t.Context())
	h.create(t, "s1")
	if e := nextEvent(t, evs); e.Type != SessionCreated || e.SessionID != "s1" || e.Node != "a" {
		t.Errorf("own event %+v, want session_created s1 on a", e)
	}
	if sent := relay.sentEvents(); len(sent) != 1 || sent[0].Type != SessionCreated || sent[0].Node != "a" || sent[0].Time.IsZero() {
		t.Errorf("sent %+v, want the session_created of a, with its time", sent)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	relay.in <- Event{Type: SessionError, SessionID: "s9", Node: "b", Time: at, Err: errors.New(ReasonNodeLost)}
	relay.in <- Event{Type: EventsLost}
	if e := nextEvent(t, evs); e.Type != SessionError || e.SessionID != "s9" || e.Node != "b" || !e.Time.Equal(at) {
		t.Errorf("relayed event %+v, want b's session_error as sent", e)
	}
	if e := nextEvent(t, evs); e.Type != EventsLost {
		t.Errorf("relayed event %+v, want events_lost", e)
	}
	select {
	case e := <-evs:
		t.Errorf("an event more: %+v", e)
	default:
	}
	if err := h.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-relay.received:
	default:
		t.Error("Receive still runs after Close")
	}
}

func TestRelayNeedsNodeName(t *testing.T) {
	err := Options{Store: newMemStore(), Plugins: fakePlugins{}, Relay: newFakeRelay()}.Validate()
	if err == nil {
		t.Error("a relay without a node name was accepted")
	}
}

// reclaimingStore is a memStore that is a SessionReclaimer: it reclaims
// as core/gormstore does while live says the node's lease is its, a
// record of no node (a single server's) too.
type reclaimingStore struct {
	*memStore
	live bool
	// envErr, if set, is what GetEnvironment fails with.
	envErr error
}

// keptNodeHarness returns a harness of node "a" whose store is store (a
// reclaimingStore over the harness's memStore) and whose plugins kept
// keeper's sessions.
func keptNodeHarness(t *testing.T, store *reclaimingStore, keeper *fakeKeeper) *harness {
	t.Helper()
	return newHarness(t, func(o *Options) {
		store.memStore = o.Store.(*memStore)
		o.Store, o.NodeName = store, "a"
		o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper}
	})
}

func (s *reclaimingStore) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	if s.envErr != nil {
		return Environment{}, s.envErr
	}
	return s.memStore.GetEnvironment(ctx, id)
}

func (s *reclaimingStore) ReclaimSession(_ context.Context, id, node string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[id]
	if !ok || !s.live || !reclaimable(rec, node) {
		return false, nil
	}
	rec.Node, rec.Status, rec.StatusReason = node, StatusActive, ""
	s.sessions[id] = rec
	return true, nil
}

// EndNodeLost ends a node_lost record as core/gormstore does, in one step
// under the store's lock, whatever node the record names.
func (s *reclaimingStore) EndNodeLost(_ context.Context, id, reason string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[id]
	if !ok || rec.Status != StatusError || !IsNodeLost(rec.StatusReason) {
		return false, nil
	}
	rec.Status, rec.StatusReason, rec.ActiveConnections = StatusTerminated, reason, 0
	s.sessions[id] = rec
	return true, nil
}

// TestDestroyNodeLostSession: node a destroying a session node b ran,
// recorded node_lost while b is away, records it TERMINATED (destroyed)
// and publishes session_destroyed; other records it does not run are left
// alone, and one that runs on b is ErrOtherNode (b may have taken a
// node_lost session up again between the API's look and the destroy).
// When b comes back with the session kept, it finds the session no
// longer node_lost and hangs it up instead of taking it up.
func TestDestroyNodeLostSession(t *testing.T) {
	store := &reclaimingStore{live: true}
	ha := newHarness(t, func(o *Options) {
		store.memStore = o.Store.(*memStore)
		o.Store, o.NodeName = store, "a"
	})
	ha.saveRows(t,
		SessionRecord{ID: "lost", Node: "b", Status: StatusError, StatusReason: ReasonNodeLost},
		SessionRecord{ID: "crashed", Node: "b", Status: StatusError, StatusReason: ReasonPluginCrashed},
		SessionRecord{ID: "running", Node: "b", Status: StatusActive},
	)
	evs := ha.m.Subscribe(t.Context())
	for _, id := range []string{"lost", "crashed", "running", "unknown"} {
		err := ha.m.DestroySession(t.Context(), id)
		if want := id == "running"; errors.Is(err, ErrOtherNode) != want || (!want && err != nil) {
			t.Errorf("DestroySession(%s): %v; want ErrOtherNode %v", id, err, want)
		}
	}
	if e := nextEvent(t, evs); e.Type != SessionDestroyed || e.SessionID != "lost" {
		t.Errorf("event %+v, want session_destroyed lost", e)
	}
	for id, want := range map[string]string{
		"lost":    string(StatusTerminated) + " " + ReasonDestroyedNodeLost,
		"crashed": string(StatusError) + " " + ReasonPluginCrashed,
		"running": string(StatusActive),
	} {
		row := ha.store.row(t, id)
		got := string(row.Status)
		if row.StatusReason != "" {
			got += " " + row.StatusReason
		}
		if got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	select {
	case e := <-evs:
		t.Errorf("an event more: %+v", e)
	default:
	}

	// b comes back; its plugin kept the session.
	keeper := newFakeKeeper()
	keeper.keep("lost", 0, []byte("$ "), nil)
	hb := newHarness(t, func(o *Options) {
		o.Store, o.NodeName = store, "b"
		o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper}
	})
	if _, err := hb.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tryAttach(hb.m, "lost"); err == nil {
		t.Error("b took the destroyed session up again")
	}
	if kills, closes := keeper.pty(t, "lost").Counts(); kills != 1 || closes != 1 {
		t.Errorf("kills=%d closes=%d, want the destroyed session hung up", kills, closes)
	}
	if row := ha.store.row(t, "lost"); row.Status != StatusTerminated || row.StatusReason != ReasonDestroyedNodeLost {
		t.Errorf("row after b came back: %+v, want it still destroyed", row)
	}
}

// TestReconcileReclaimsNodeLost: a node back after another recorded its
// sessions node_lost takes up those its plugins kept; those no plugin
// kept stay node_lost; a kept session recorded lost otherwise, or of
// another node, is hung up, not taken.
func TestReconcileReclaimsNodeLost(t *testing.T) {
	keeper := newFakeKeeper()
	for _, id := range []string{"lost-kept", "other-node", "server-lost"} {
		keeper.keep(id, 0, []byte("$ "), nil)
	}
	h := keptNodeHarness(t, &reclaimingStore{live: true}, keeper)
	h.saveRows(t,
		SessionRecord{ID: "lost-kept", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost},
		SessionRecord{ID: "lost-unkept", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost},
		SessionRecord{ID: "other-node", Node: "b", Status: StatusError, StatusReason: ReasonNodeLost},
		SessionRecord{ID: "server-lost", Node: "a", Status: StatusError, StatusReason: ReasonServerLost},
	)
	evs := h.m.Subscribe(t.Context())
	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v; want 0 lost", n, err)
	}
	if e := nextEvent(t, evs); e.Type != SessionResumed || e.SessionID != "lost-kept" || e.Node != "a" {
		t.Errorf("event %+v, want session_resumed lost-kept", e)
	}
	for id, want := range map[string]string{
		"lost-kept":   string(StatusActive),
		"lost-unkept": string(StatusError) + " " + ReasonNodeLost,
		"other-node":  string(StatusError) + " " + ReasonNodeLost,
		"server-lost": string(StatusError) + " " + ReasonServerLost,
	} {
		row := h.store.row(t, id)
		got := string(row.Status)
		if row.StatusReason != "" {
			got += " " + row.StatusReason
		}
		if got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if err := tryAttach(h.m, "lost-kept"); err != nil {
		t.Errorf("attaching to the session taken up: %v", err)
	}
	for _, id := range []string{"other-node", "server-lost"} {
		if kills, closes := keeper.pty(t, id).Counts(); kills != 1 || closes != 1 {
			t.Errorf("%s: kills=%d closes=%d, want it hung up", id, kills, closes)
		}
	}
}

// TestPruneKeepsNodeLost: a prune while a node is away (run on any node)
// leaves its sessions' node_lost records, and deletes the other ended
// ones; the node coming back with a session kept takes it up.
func TestPruneKeepsNodeLost(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("lost-kept", 0, []byte("$ "), nil)
	h := keptNodeHarness(t, &reclaimingStore{live: true}, keeper)
	h.saveRows(t,
		SessionRecord{ID: "lost-kept", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost},
		SessionRecord{ID: "crashed", Node: "a", Status: StatusError, StatusReason: ReasonPluginCrashed},
		SessionRecord{ID: "done", Node: "b", Status: StatusTerminated},
	)
	if n, err := h.m.PruneEnded(t.Context()); err != nil || n != 2 {
		t.Fatalf("PruneEnded = %d, %v; want 2 deleted", n, err)
	}
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if kills, _ := keeper.pty(t, "lost-kept").Counts(); kills != 0 {
		t.Errorf("the kept session was hung up (kills=%d): the prune deleted its record", kills)
	}
	if row := h.store.row(t, "lost-kept"); row.Status != StatusActive {
		t.Errorf("lost-kept is %s %q, want ACTIVE again", row.Status, row.StatusReason)
	}
}

// TestReconcileHangsUpNodeLostOfDeletedEnvironment: a session recorded
// node_lost whose environment was deleted while its node was away (which
// a node_lost session does not prevent), or made again under its id as
// another type, is hung up when the node comes back, not taken up, and
// its record stays node_lost.
func TestReconcileHangsUpNodeLostOfDeletedEnvironment(t *testing.T) {
	keeper := newFakeKeeper()
	for _, id := range []string{"in-deleted-env", "in-retyped-env", "in-fake-env"} {
		keeper.keep(id, 0, []byte("$ "), nil) // kept as type FAKE
	}
	h := keptNodeHarness(t, &reclaimingStore{live: true}, keeper)
	ctx := t.Context()
	for _, env := range []Environment{{ID: "deleted", Name: "deleted", Type: "FAKE"}, {ID: "retyped", Name: "retyped", Type: "OTHER"}} {
		if err := h.store.CreateEnvironment(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	h.saveRows(t, SessionRecord{ID: "in-fake-env", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost})
	now := time.Now().UTC()
	for id, env := range map[string]string{"in-deleted-env": "deleted", "in-retyped-env": "retyped"} {
		if err := h.store.SaveSession(ctx, SessionRecord{ID: id, EnvironmentID: env, Node: "a",
			Status: StatusError, StatusReason: ReasonNodeLost, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.store.DeleteEnvironment(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"in-deleted-env", "in-retyped-env"} {
		if row := h.store.row(t, id); row.Status != StatusError || row.StatusReason != ReasonNodeLost {
			t.Errorf("%s: row %+v, want it left node_lost", id, row)
		}
		if err := tryAttach(h.m, id); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("%s: the session is live: %v", id, err)
		}
		if kills, closes := keeper.pty(t, id).Counts(); kills != 1 || closes != 1 {
			t.Errorf("%s: kills=%d closes=%d, want it hung up", id, kills, closes)
		}
	}
	if row := h.store.row(t, "in-fake-env"); row.Status != StatusActive {
		t.Errorf("the session of the environment still there: %+v, want it taken up", row)
	}
}

// TestReconcileNodeLostEnvironmentLookupFails: a store that cannot say
// whether a node_lost session's environment is there fails the
// Reconcile, which takes nothing up and hangs nothing up.
func TestReconcileNodeLostEnvironmentLookupFails(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("lost-kept", 0, []byte("$ "), nil)
	broken := errors.New("the database is gone")
	h := keptNodeHarness(t, &reclaimingStore{live: true, envErr: broken}, keeper)
	h.saveRows(t, SessionRecord{ID: "lost-kept", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost})
	if _, err := h.m.Reconcile(t.Context()); !errors.Is(err, broken) {
		t.Errorf("Reconcile: %v, want the store's error", err)
	}
	if row := h.store.row(t, "lost-kept"); row.Status != StatusError || row.StatusReason != ReasonNodeLost {
		t.Errorf("row %+v, want it left node_lost", row)
	}
	keeper.mu.Lock()
	attached := keeper.attached["lost-kept"] != nil
	keeper.mu.Unlock()
	if attached {
		t.Error("the kept session was attached to (taken up or hung up), want it left to the plugin")
	}
}

// TestReconcileWithoutLeaseReclaimsNothing: a node whose lease is not
// live (the store refuses the reclaim) takes nothing up and hangs the
// kept session up.
func TestReconcileWithoutLeaseReclaimsNothing(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("lost-kept", 0, []byte("$ "), nil)
	h := keptNodeHarness(t, &reclaimingStore{live: false}, keeper)
	h.saveRows(t, SessionRecord{ID: "lost-kept", Node: "a", Status: StatusError, StatusReason: ReasonNodeLost})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "lost-kept"); row.Status != StatusError || row.StatusReason != ReasonNodeLost {
		t.Errorf("row %+v, want it left node_lost", row)
	}
	if err := tryAttach(h.m, "lost-kept"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("the session is live: %v", err)
	}
	if kills, _ := keeper.pty(t, "lost-kept").Counts(); kills != 1 {
		t.Error("the kept session was not hung up")
	}
}
