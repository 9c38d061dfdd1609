package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/dataplane/ebpf"
)

func init() {
	DataPlanes["ebpf"] = openEBPF
}

// ebpfDP adapts *ebpf.DataPlane to DataPlane (Close(keep) is its Stop).
type ebpfDP struct {
	*ebpf.DataPlane
	fastReroute bool
	log         *slog.Logger
}

func (e ebpfDP) Close(keep bool) error { return e.Stop(keep) }

// neighbourUpkeep is how often the next hops of the fast-reroute pairs are
// checked (ebpf.DataPlane.KeepNeighbours).
const neighbourUpkeep = 20 * time.Second

// Run delivers data-plane events until ctx is done, then returns nil. With
// fast reroute it also keeps the backup pairs' next hops resolved.
func (e ebpfDP) Run(ctx context.Context, fn func(dataplane.Event)) error {
	if e.fastReroute {
		go func() {
			t := time.NewTicker(neighbourUpkeep)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if err := e.KeepNeighbours(); err != nil && ctx.Err() == nil {
						e.log.Debug("fast reroute: neighbour upkeep", "err", err)
					}
				}
			}
		}()
	}
	err := e.DataPlane.Run(ctx, fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// openEBPF loads the eBPF data plane on the uplinks, or adopts the one a
// previous run left pinned in dataplane.pin_dir.
func openEBPF(ctx context.Context, cfg *Config, uplinks []string, log *slog.Logger) (DataPlane, error) {
	ec := ebpf.Config{
		Uplinks:     uplinks,
		PinPath:     cfg.DataPlane.PinDir,
		MaxContexts: uint32(cfg.Limits.MaxContexts),
		Logger:      log,
		FastReroute: cfg.FastReroute(),
	}
	// The data plane raises one trigger per ULID pair after TriggerPackets
	// packets; the daemon then applies [peers] (eventFilter). With
	// trigger.packets = 0 only peers.always are shimmed, at their first
	// packet.
	switch {
	case cfg.Trigger.Packets > 0:
		ec.TriggerPackets = cfg.Trigger.Packets
	case len(cfg.Peers.Always) > 0:
		ec.TriggerPackets = 1
	default:
		ec.DisableTrigger = true
	}
	dp, err := ebpf.Load(ec)
	if errors.Is(err, ebpf.ErrKernelFeature) {
		return nil, fmt.Errorf("this kernel cannot run the eBPF data plane: %w (dataplane.kind = \"memory\" runs the control plane alone)", err)
	}
	if err != nil {
		return nil, err
	}
	return ebpfDP{DataPlane: dp, fastReroute: ec.FastReroute, log: log}, nil
}
