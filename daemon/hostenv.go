package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/goshim6/goshim6/locators"
	"github.com/goshim6/goshim6/netio"
)

// DataPlaneOpener opens a data plane of one kind (see dataplane.kind).
type DataPlaneOpener func(ctx context.Context, cfg *Config, uplinks []string, log *slog.Logger) (DataPlane, error)

// DataPlanes maps dataplane.kind values to their openers. "memory" is
// always there; the eBPF data plane registers "ebpf" (cmd/shim6d).
var DataPlanes = map[string]DataPlaneOpener{
	"memory": func(context.Context, *Config, []string, *slog.Logger) (DataPlane, error) {
		return NewMemoryDataPlane(), nil
	},
}

// HostEnvironment is the Environment of a real host: rtnetlink addresses,
// the raw sockets of package netio, the data plane named by
// dataplane.kind, and the protocol engine.
func HostEnvironment() Environment {
	return Environment{
		Preflight: hostPreflight,
		OpenTCPLD: OpenTCPLD,
		OpenAddrs: func(ctx context.Context, log *slog.Logger) (AddrSource, error) {
			w, err := locators.NewWatcher(locators.Options{})
			if err != nil {
				return nil, err
			}
			return &watcherSource{w: w, log: log}, nil
		},
		OpenDataPlane: func(ctx context.Context, cfg *Config, uplinks []string, log *slog.Logger) (DataPlane, error) {
			open, ok := DataPlanes[cfg.DataPlane.Kind]
			if !ok {
				return nil, fmt.Errorf("dataplane.kind %q is not available in this build", cfg.DataPlane.Kind)
			}
			return open(ctx, cfg, uplinks, log)
		},
		OpenPacketIO: func(ctx context.Context, log *slog.Logger) (PacketIO, error) {
			p := &netioPIO{}
			p.locals.Store(&map[netip.Addr]bool{})
			io, err := netio.Open(netio.ICMPOptions{Filter: p.wantICMP})
			if err != nil {
				return nil, err
			}
			p.io = io
			return p, nil
		},
		NewCore: NewEngineCore,
		AddAddress: func(iface string, p netip.Prefix) error {
			// The interface already routes the prefix; DAD stays on: it
			// is what tells a (very unlikely) collision.
			return locators.AddAddress(iface, p, locators.AddOptions{NoPrefixRoute: true})
		},
	}
}

// hostPreflight refuses to start, saying why, where shim6d cannot work.
func hostPreflight(cfg *Config) error {
	if os.Geteuid() != 0 {
		return errors.New("shim6d must run as root: it opens raw sockets, loads eBPF programs and changes addresses and routing rules")
	}
	// The kernel's BPF features are checked by the eBPF loader, which
	// names what is missing, before the host is changed.
	return nil
}

// watcherSource adapts locators.Watcher to AddrSource.
type watcherSource struct {
	w   *locators.Watcher
	log *slog.Logger
}

func toHostAddrs(as []locators.Addr) []HostAddr {
	out := make([]HostAddr, 0, len(as))
	for _, a := range as {
		out = append(out, HostAddr{Addr: a.Addr, PrefixLen: a.PrefixLen, Interface: a.Interface,
			Deprecated: a.Deprecated, Tentative: !a.Usable()})
	}
	return out
}

func (s *watcherSource) Snapshot() ([]HostAddr, error) { return toHostAddrs(s.w.Snapshot()), nil }

func (s *watcherSource) Run(ctx context.Context, fn func([]HostAddr)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-s.w.Events():
			if !ok {
				if err := s.w.Err(); err != nil {
					return err
				}
				return nil
			}
			s.log.Info("address change", "event", ev.String())
			fn(toHostAddrs(ev.All))
		}
	}
}

func (s *watcherSource) Close() error { return s.w.Close() }

// netioPIO adapts netio.IO to PacketIO.
type netioPIO struct {
	io *netio.IO
	// locals are the local locators: ICMPv6 errors about packets sent
	// from them reach the engine too (RFC 5533 §8: the data plane has
	// already translated errors about shimmed packets back to the ULIDs,
	// so they carry no Shim6 header any more).
	locals atomic.Pointer[map[netip.Addr]bool]
}

func (p *netioPIO) wantICMP(e *netio.ICMPError) bool {
	return e.ShimRelated() || (*p.locals.Load())[e.Packet.Src]
}

// SetLocalLocators implements LocatorAware.
func (p *netioPIO) SetLocalLocators(addrs []netip.Addr) {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a] = true
	}
	p.locals.Store(&m)
}

func (p *netioPIO) Send(src, dst netip.Addr, msg []byte) error { return p.io.Send(src, dst, msg) }

func (p *netioPIO) Run(ctx context.Context, packet func(Packet), icmp func(ICMPError)) error {
	return p.io.Run(ctx,
		func(pk netio.Packet) { packet(Packet{Src: pk.Src, Dst: pk.Dst, Data: pk.Data}) },
		func(e netio.ICMPError) {
			icmp(ICMPError{Src: e.From, Type: e.Type, Code: e.Code, Invoking: e.Invoking})
		})
}

func (p *netioPIO) Counters() map[string]uint64 { return p.io.Counters() }
func (p *netioPIO) Close() error                { return p.io.Close() }
