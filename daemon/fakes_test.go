package daemon

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

// fakeClock advances only when told to; timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk    *fakeClock
	c      chan time.Time
	when   time.Time
	active bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clk: f, c: make(chan time.Time, 1), when: f.now.Add(d), active: true}
	f.timers = append(f.timers, t)
	return t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.timers {
		if t.active && !t.when.After(f.now) {
			t.active = false
			select {
			case t.c <- f.now:
			default:
			}
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	// Go 1.23 semantics: no stale value after Reset.
	select {
	case <-t.c:
	default:
	}
	t.when = t.clk.now.Add(d)
	t.active = true
	if d <= 0 {
		t.active = false
		t.c <- t.clk.now
	}
}
func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.active = false
}

// fakeCore records calls and keeps a tiny context table.
type fakeCore struct {
	emit func(api.Event)

	// deadline, if set, is returned by NextDeadline.
	deadline time.Time
	// calls receives one string per input handled (buffered, never
	// blocks: tests read what they expect).
	calls chan string

	packets  []Packet
	activity []dataplane.Activity
	dpEvents []dataplane.Event
	locs     []LocalLocator
	// trouble is what PathTrouble answers.
	trouble  bool
	timers   []time.Time
	contexts map[uint64]api.Context
	nextTag  uint64
	panicOn  string
}

func newFakeCore() *fakeCore {
	return &fakeCore{calls: make(chan string, 1024), contexts: map[uint64]api.Context{}, nextTag: 0x100}
}

func (f *fakeCore) note(s string) {
	if f.panicOn == s {
		panic("fake core: " + s)
	}
	select {
	case f.calls <- s:
	default:
	}
}

func (f *fakeCore) HandlePacket(now time.Time, src, dst netip.Addr, b []byte) {
	f.packets = append(f.packets, Packet{src, dst, b})
	f.note("packet")
}
func (f *fakeCore) HandleICMP(now time.Time, src netip.Addr, typ, code uint8, inv []byte) {
	f.note("icmp")
}
func (f *fakeCore) HandleTimer(now time.Time) {
	f.timers = append(f.timers, now)
	if !f.deadline.IsZero() && !now.Before(f.deadline) {
		f.deadline = time.Time{}
	}
	f.note("timer")
}
func (f *fakeCore) NextDeadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }
func (f *fakeCore) HandleActivity(now time.Time, a dataplane.Activity) {
	f.activity = append(f.activity, a)
	f.note("activity")
}
func (f *fakeCore) HandleDataPlaneEvent(now time.Time, ev dataplane.Event) {
	f.dpEvents = append(f.dpEvents, ev)
	if ev.Kind == dataplane.EventTrigger {
		f.CreateContext(now, api.CreateParams{LocalULID: ev.Src, PeerULID: ev.Dst})
	}
	f.note("dpevent")
}
func (f *fakeCore) PathTrouble(local, peer netip.Addr) bool { return f.trouble }
func (f *fakeCore) SetLocalLocators(now time.Time, locs []LocalLocator) {
	f.locs = locs
	f.note("locators")
}
func (f *fakeCore) Contexts(now time.Time) []api.Context {
	var out []api.Context
	for _, c := range f.contexts {
		out = append(out, c)
	}
	return out
}
func (f *fakeCore) find(ref api.ContextRef) (api.Context, error) {
	for _, c := range f.contexts {
		if c.LocalTag == ref.Tag || (ref.Tag == 0 && c.PeerULID == ref.PeerULID) {
			return c, nil
		}
	}
	return api.Context{}, api.Errorf(api.CodeNotFound, "no context %s", ref)
}
func (f *fakeCore) Context(now time.Time, ref api.ContextRef) (api.Context, error) {
	return f.find(ref)
}
func (f *fakeCore) CreateContext(now time.Time, p api.CreateParams) (api.Context, error) {
	if _, err := f.find(api.ContextRef{PeerULID: p.PeerULID}); err == nil {
		return api.Context{}, api.Errorf(api.CodeExists, "exists")
	}
	f.nextTag++
	c := api.Context{LocalTag: f.nextTag, LocalULID: p.LocalULID, PeerULID: p.PeerULID, State: "i1-sent", Created: now}
	f.contexts[c.LocalTag] = c
	if f.emit != nil {
		f.emit(api.Event{Kind: api.EventContextCreated, Tag: c.LocalTag, PeerULID: c.PeerULID})
	}
	return c, nil
}
func (f *fakeCore) DeleteContext(now time.Time, ref api.ContextRef) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	delete(f.contexts, c.LocalTag)
	return nil
}
func (f *fakeCore) Update(now time.Time, ref api.ContextRef) error {
	_, err := f.find(ref)
	return err
}
func (f *fakeCore) Explore(now time.Time, ref api.ContextRef) error {
	c, err := f.find(ref)
	if err != nil {
		return err
	}
	if c.State != "established" {
		return api.Errorf(api.CodeFailedPrecondition, "not established")
	}
	return nil
}
func (f *fakeCore) Pin(now time.Time, p api.PinParams) error {
	_, err := f.find(p.ContextRef)
	return err
}
func (f *fakeCore) Unpin(now time.Time, ref api.ContextRef) error {
	_, err := f.find(ref)
	return err
}
func (f *fakeCore) SetSendTimeout(now time.Time, ref api.ContextRef, d time.Duration) error {
	_, err := f.find(ref)
	return err
}
func (f *fakeCore) Locators(now time.Time) api.Locators {
	var l api.Locators
	for _, x := range f.locs {
		l.Local = append(l.Local, api.Locator{Addr: x.Addr, Interface: x.Interface, State: "usable"})
	}
	return l
}
func (f *fakeCore) Counters() map[string]uint64 {
	return map[string]uint64{"fake_packets": uint64(len(f.packets))}
}

// fakeActivity returns a fixed set of activity records.
type fakeActivity struct {
	mu   sync.Mutex
	recs []dataplane.Activity
	err  error
}

func (f *fakeActivity) ReadActivity(fn func(dataplane.Activity)) error {
	f.mu.Lock()
	recs, err := f.recs, f.err
	f.mu.Unlock()
	for _, r := range recs {
		fn(r)
	}
	return err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
