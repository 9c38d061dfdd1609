package daemon

import (
	"context"
	"maps"
	"os"
	"time"

	"github.com/goshim6/goshim6/api"
)

// StatusInfo is the part of the status that the loop does not know.
type StatusInfo struct {
	Version   string
	Started   time.Time
	Config    string
	Security  string
	DataPlane string
	Adopted   bool
	Warnings  []string
}

// Backend serves the management API by sending every request to the loop.
type Backend struct {
	Loop *Loop
	// Info returns the static part of the status (may be nil).
	Info func() StatusInfo
	// ExtraCounters adds counters from outside the core (netio, data
	// plane); called off the loop goroutine. May be nil.
	ExtraCounters func() map[string]uint64
}

var _ api.Backend = (*Backend)(nil)

// Status implements api.Backend.
func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	if b.Info != nil {
		i := b.Info()
		st = api.Status{Version: i.Version, Started: i.Started, Config: i.Config, Security: i.Security,
			DataPlane: i.DataPlane, Adopted: i.Adopted, Warnings: i.Warnings}
	}
	st.PID = os.Getpid()
	err := b.Loop.Do(ctx, func(now time.Time, c Core) error {
		st.Now = now
		cs := c.Contexts(now)
		st.Contexts = len(cs)
		st.ContextsByState = map[string]int{}
		for _, x := range cs {
			st.ContextsByState[x.State]++
		}
		st.Locators = len(c.Locators(now).Local)
		st.VerificationFailures = c.Counters()["engine_verification_failures"]
		return nil
	})
	return st, err
}

// Contexts implements api.Backend.
func (b *Backend) Contexts(ctx context.Context) (cs []api.Context, err error) {
	err = b.Loop.Do(ctx, func(now time.Time, c Core) error {
		cs = c.Contexts(now)
		return nil
	})
	return cs, err
}

// Context implements api.Backend.
func (b *Backend) Context(ctx context.Context, ref api.ContextRef) (x api.Context, err error) {
	err = b.Loop.Do(ctx, func(now time.Time, c Core) (e error) {
		x, e = c.Context(now, ref)
		return e
	})
	return x, err
}

// CreateContext implements api.Backend.
func (b *Backend) CreateContext(ctx context.Context, p api.CreateParams) (x api.Context, err error) {
	err = b.Loop.Do(ctx, func(now time.Time, c Core) (e error) {
		x, e = c.CreateContext(now, p)
		return e
	})
	return x, err
}

// DeleteContext implements api.Backend.
func (b *Backend) DeleteContext(ctx context.Context, ref api.ContextRef) error {
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.DeleteContext(now, ref) })
}

// Update implements api.Backend.
func (b *Backend) Update(ctx context.Context, ref api.ContextRef) error {
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.Update(now, ref) })
}

// Explore implements api.Backend.
func (b *Backend) Explore(ctx context.Context, ref api.ContextRef) error {
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.Explore(now, ref) })
}

// Pin implements api.Backend.
func (b *Backend) Pin(ctx context.Context, p api.PinParams) error {
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.Pin(now, p) })
}

// Unpin implements api.Backend.
func (b *Backend) Unpin(ctx context.Context, ref api.ContextRef) error {
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.Unpin(now, ref) })
}

// Set implements api.Backend.
func (b *Backend) Set(ctx context.Context, p api.SetParams) error {
	d := time.Duration(p.SendTimeoutSeconds) * time.Second
	return b.Loop.Do(ctx, func(now time.Time, c Core) error { return c.SetSendTimeout(now, p.ContextRef, d) })
}

// Locators implements api.Backend.
func (b *Backend) Locators(ctx context.Context) (l api.Locators, err error) {
	err = b.Loop.Do(ctx, func(now time.Time, c Core) error {
		l = c.Locators(now)
		return nil
	})
	if l.Local == nil {
		l.Local = []api.Locator{}
	}
	return l, err
}

// Stats implements api.Backend.
func (b *Backend) Stats(ctx context.Context) (api.Stats, error) {
	st := api.Stats{Counters: map[string]uint64{}}
	err := b.Loop.Do(ctx, func(now time.Time, c Core) error {
		maps.Copy(st.Counters, c.Counters())
		return nil
	})
	if err != nil {
		return st, err
	}
	maps.Copy(st.Counters, b.Loop.Counters())
	if b.ExtraCounters != nil {
		maps.Copy(st.Counters, b.ExtraCounters())
	}
	return st, nil
}

// Subscribe implements api.Backend.
func (b *Backend) Subscribe(ctx context.Context) (<-chan api.Event, func(), error) {
	select {
	case <-b.Loop.Done():
		return nil, nil, api.Errorf(api.CodeUnavailable, "shim6d is stopping")
	default:
	}
	ch, cancel := b.Loop.Subscribe()
	return ch, cancel, nil
}
