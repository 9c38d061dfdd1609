package locators

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options configure a Watcher.
type Options struct {
	Filter Filter
	// Buffer is the capacity of the Events channel (default 64). When the
	// reader falls behind, the Watcher waits; if the kernel then drops
	// notifications, the Watcher re-reads everything and reports the
	// difference followed by a Resync event.
	Buffer int
}

// Watcher keeps the host's current locators and reports their changes.
type Watcher struct {
	filter Filter
	sub    *rtnl // subscribed to link and IPv6 address notifications
	dumper *rtnl // for the initial read and resyncs

	mu    sync.Mutex
	links map[int]link
	addrs map[key]Addr // every global IPv6 address, unfiltered
	err   error

	events chan Event
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

type link struct {
	name string
	up   bool
}

// List returns the current filtered addresses once, without watching.
func List(f Filter) ([]Addr, error) {
	w, err := newWatcher(Options{Filter: f}, false)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return w.Snapshot(), nil
}

// NewWatcher reads the current addresses of the calling thread's network
// namespace and starts following their changes.
func NewWatcher(opts Options) (*Watcher, error) {
	return newWatcher(opts, true)
}

func newWatcher(opts Options, watch bool) (*Watcher, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	w := &Watcher{
		filter: opts.Filter,
		links:  map[int]link{},
		addrs:  map[key]Addr{},
		events: make(chan Event, opts.Buffer),
		done:   make(chan struct{}),
	}
	var err error
	if watch {
		// Subscribe first, so that nothing that changes during the
		// initial read is missed (applying it twice is harmless).
		if w.sub, err = openRTNL(1<<(unix.RTNLGRP_LINK-1) | 1<<(unix.RTNLGRP_IPV6_IFADDR-1)); err != nil {
			return nil, err
		}
	}
	if w.dumper, err = openRTNL(0); err != nil {
		w.closeSockets()
		return nil, err
	}
	if _, err := w.resync(); err != nil {
		w.closeSockets()
		return nil, err
	}
	if !watch {
		close(w.events)
		return w, nil
	}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

func (w *Watcher) closeSockets() {
	if w.sub != nil {
		w.sub.Close()
	}
	if w.dumper != nil {
		w.dumper.Close()
	}
}

// Close stops watching; Events is closed once the watcher's goroutine has
// ended, before Close returns.
func (w *Watcher) Close() error {
	w.once.Do(func() {
		close(w.done)
		w.closeSockets()
	})
	w.wg.Wait()
	return nil
}

// Events delivers changes in order. It is closed after Close, or after a
// fatal socket error (see Err).
func (w *Watcher) Events() <-chan Event { return w.events }

// Err returns the error that ended the watcher, if any.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Snapshot returns the current filtered addresses, ordered by interface
// index and address.
func (w *Watcher) Snapshot() []Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snapshotLocked()
}

func (w *Watcher) snapshotLocked() []Addr {
	var out []Addr
	for _, a := range w.addrs {
		a = w.decorate(a)
		if w.filter.Match(a) {
			out = append(out, a)
		}
	}
	sortAddrs(out)
	return out
}

// decorate fills in what comes from the link: its name and state.
func (w *Watcher) decorate(a Addr) Addr {
	l := w.links[a.IfIndex]
	a.Interface, a.LinkUp = l.name, l.up
	return a
}

func (w *Watcher) run() {
	defer w.wg.Done()
	defer close(w.events)
	for {
		msgs, err := w.sub.recv()
		if err != nil {
			select {
			case <-w.done:
				return
			default:
			}
			if errors.Is(err, unix.ENOBUFS) {
				evs, rerr := w.resync()
				if rerr == nil {
					if !w.emit(evs) {
						return
					}
					continue
				}
				err = rerr
			}
			select {
			case <-w.done: // closed while resyncing
				return
			default:
			}
			w.mu.Lock()
			w.err = fmt.Errorf("locators: %w", err)
			w.mu.Unlock()
			return
		}
		var evs []Event
		w.mu.Lock()
		for _, m := range msgs {
			evs = append(evs, w.applyLocked(m)...)
		}
		w.mu.Unlock()
		if !w.emit(evs) {
			return
		}
	}
}

// emit delivers events; false when the watcher is closing.
func (w *Watcher) emit(evs []Event) bool {
	for _, e := range evs {
		select {
		case w.events <- e:
		case <-w.done:
			return false
		}
	}
	return true
}

// applyLocked applies one notification and returns the resulting events.
func (w *Watcher) applyLocked(m syscall.NetlinkMessage) []Event {
	if lm, ok := parseLinkMsg(m); ok {
		return w.applyLinkLocked(lm)
	}
	if am, ok := parseAddrMsg(m); ok {
		return w.applyAddrLocked(am)
	}
	return nil
}

func (w *Watcher) event(kind EventKind, a Addr, iface string) Event {
	return Event{Kind: kind, Addr: a, Interface: iface, All: w.snapshotLocked()}
}

func (w *Watcher) applyLinkLocked(lm linkMsg) []Event {
	old, existed := w.links[lm.ifindex]
	if lm.del {
		delete(w.links, lm.ifindex)
		var evs []Event
		for k, a := range w.addrs {
			if k.ifindex == lm.ifindex {
				a.Interface, a.LinkUp = old.name, old.up
				delete(w.addrs, k)
				if w.filter.Match(a) {
					evs = append(evs, w.event(Removed, a, old.name))
				}
			}
		}
		return evs
	}
	w.links[lm.ifindex] = link{name: lm.name, up: lm.up}
	if !existed || old.up == lm.up || !w.hasMatchLocked(lm.ifindex) {
		return nil
	}
	if lm.up {
		return []Event{w.event(LinkUp, Addr{}, lm.name)}
	}
	return []Event{w.event(LinkDown, Addr{}, lm.name)}
}

func (w *Watcher) hasMatchLocked(ifindex int) bool {
	for k, a := range w.addrs {
		if k.ifindex == ifindex && w.filter.Match(w.decorate(a)) {
			return true
		}
	}
	return false
}

func (w *Watcher) applyAddrLocked(am addrMsg) []Event {
	if !Global(am.a.Addr) {
		return nil
	}
	k := key{am.ifindex, am.a.Addr}
	old, existed := w.addrs[k]
	if am.del {
		if !existed {
			return nil
		}
		delete(w.addrs, k)
		if a := w.decorate(old); w.filter.Match(a) {
			return []Event{w.event(Removed, a, a.Interface)}
		}
		return nil
	}
	w.addrs[k] = am.a
	a := w.decorate(am.a)
	if !w.filter.Match(a) {
		return nil
	}
	if !existed {
		return []Event{w.event(Added, a, a.Interface)}
	}
	var evs []Event
	switch {
	case !old.DADFailed && a.DADFailed:
		evs = append(evs, w.event(DADFailed, a, a.Interface))
	case old.Tentative && !a.Tentative:
		evs = append(evs, w.event(Ready, a, a.Interface))
	}
	switch {
	case !old.Deprecated && a.Deprecated:
		evs = append(evs, w.event(Deprecated, a, a.Interface))
	case old.Deprecated && !a.Deprecated:
		evs = append(evs, w.event(Preferred, a, a.Interface))
	}
	return evs
}

// resync re-reads all links and addresses and returns the events that
// turn the old state into the new one, then a Resync event (none on the
// first read).
func (w *Watcher) resync() ([]Event, error) {
	lmsgs, err := w.dumper.dump(unix.RTM_GETLINK, linkDumpHdr)
	if err != nil {
		return nil, err
	}
	amsgs, err := w.dumper.dump(unix.RTM_GETADDR, addrDumpHdr)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	first := len(w.links) == 0 && len(w.addrs) == 0
	var evs []Event
	seenLinks := map[int]bool{}
	for _, m := range lmsgs {
		if lm, ok := parseLinkMsg(m); ok && !lm.del {
			seenLinks[lm.ifindex] = true
			evs = append(evs, w.applyLinkLocked(lm)...)
		}
	}
	seenAddrs := map[key]bool{}
	for _, m := range amsgs {
		if am, ok := parseAddrMsg(m); ok && !am.del {
			seenAddrs[key{am.ifindex, am.a.Addr}] = true
			evs = append(evs, w.applyAddrLocked(am)...)
		}
	}
	for k, a := range w.addrs {
		if !seenAddrs[k] {
			evs = append(evs, w.applyAddrLocked(addrMsg{del: true, ifindex: k.ifindex, a: a})...)
		}
	}
	for i, l := range w.links {
		if !seenLinks[i] {
			evs = append(evs, w.applyLinkLocked(linkMsg{del: true, ifindex: i, name: l.name})...)
		}
	}
	if first {
		return nil, nil
	}
	return append(evs, Event{Kind: Resync, All: w.snapshotLocked()}), nil
}

// Run calls fn for every event until ctx ends (then it returns nil) or the
// watcher stops (then it returns Err()).
func (w *Watcher) Run(ctx context.Context, fn func(Event)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.events:
			if !ok {
				return w.Err()
			}
			fn(e)
		}
	}
}
