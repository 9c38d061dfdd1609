package daemon

import (
	"strconv"
	"sync"

	"github.com/goshim6/goshim6/api"
)

// subscriberBuffer is how many events a watcher may lag behind before
// events are dropped for it (it then receives one api.EventLost).
const subscriberBuffer = 256

// broadcaster fans events out to watchers without ever blocking the loop.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch      chan api.Event
	dropped uint64
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: make(map[*subscriber]struct{})}
}

// publish hands ev to every subscriber that has room, and remembers how
// many each one missed.
func (b *broadcaster) publish(ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.dropped > 0 {
			lost := api.Event{Time: ev.Time, Kind: api.EventLost,
				Message: "events dropped: the watcher reads too slowly",
				Attrs:   map[string]string{"dropped": strconv.FormatUint(s.dropped, 10)}}
			select {
			case s.ch <- lost:
				s.dropped = 0
			default:
				s.dropped++
				continue
			}
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped++
		}
	}
}

// subscribe returns a channel of events and a function that ends the
// subscription. After close, subscribe returns a closed channel.
func (b *broadcaster) subscribe() (<-chan api.Event, func()) {
	s := &subscriber{ch: make(chan api.Event, subscriberBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				close(s.ch)
			}
		})
	}
}

// close ends every subscription.
func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		close(s.ch)
		delete(b.subs, s)
	}
}

func (b *broadcaster) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
