// Command dpbench measures the eBPF data plane on the standard two-host,
// two-provider namespace topology (internal/netns): TCP throughput of one
// stream a->b for plain IPv6 (default offloads, and with segmentation
// offload off on the sender) and for a shimmed context (the payload header
// on every packet), and the per-packet cost of each BPF program from the
// kernel's BPF run-time statistics. It prints markdown for
// docs/benchmarks.md. Needs root.
//
//	go run ./dataplane/ebpf/internal/dpbench -duration 5s -rounds 3
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/dataplane"
	dpebpf "github.com/goshim6/goshim6/dataplane/ebpf"
	"github.com/goshim6/goshim6/internal/netns"
)

var (
	duration = flag.Duration("duration", 5*time.Second, "length of one throughput measurement")
	rounds   = flag.Int("rounds", 3, "rounds of all scenarios (the median is reported)")
	warmup   = flag.Duration("warmup", 500*time.Millisecond, "traffic before measuring")
	only     = flag.String("only", "", "run only the scenarios whose name contains this (the two plain baselines always run)")
	noCosts  = flag.Bool("nocosts", false, "skip the per-program cost measurement")
)

type bench struct {
	topo       *netns.Topology
	a, b       *netns.Host
	pins       string
	dpa, dpb   *dpebpf.DataPlane
	ulidA      netip.Addr
	ulidB      netip.Addr
	altA, altB netip.Addr
	fr         bool // loaded with fast reroute
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if os.Geteuid() != 0 {
		log.Fatal("dpbench: needs root")
	}
	prefix := fmt.Sprintf("dpb%d", os.Getpid())
	topo, err := netns.Build(netns.Config{Prefix: prefix})
	if err != nil {
		log.Fatal(err)
	}
	x := &bench{topo: topo, a: topo.Host("a"), b: topo.Host("b")}
	x.ulidA, x.altA = x.a.Uplinks[0].Addr, x.a.Uplinks[1].Addr
	x.ulidB, x.altB = x.b.Uplinks[0].Addr, x.b.Uplinks[1].Addr
	x.pins, err = os.MkdirTemp("", "dpbench")
	if err != nil {
		log.Fatal(err)
	}
	bpffs := filepath.Join(x.pins, "bpffs")
	os.Mkdir(bpffs, 0o700)
	if err := unix.Mount("bpf", bpffs, "bpf", 0, ""); err != nil {
		log.Fatal(err)
	}
	x.pins = bpffs
	code := 0
	if err := x.run(); err != nil {
		log.Print(err)
		code = 1
	}
	x.unload()
	unix.Unmount(bpffs, unix.MNT_DETACH)
	os.RemoveAll(filepath.Dir(bpffs))
	if err := topo.Destroy(); err != nil {
		log.Print(err)
	}
	os.Exit(code)
}

type scenario struct {
	name  string
	setup func() error
	clean func() error
}

func (x *bench) load(xdp bool, off dpebpf.Offload) error { return x.loadFR(xdp, off, false) }

// loadFR loads both data planes, with fast reroute (shim6_reroute on the
// uplinks' egress) when fr is set; install then gives the mappings their
// backup and pairs.
func (x *bench) loadFR(xdp bool, off dpebpf.Offload, fr bool) error {
	x.fr = fr
	x.unload()
	var err error
	for _, h := range []*netns.Host{x.a, x.b} {
		cfg := dpebpf.Config{
			NetNS:          h.NS.Path(),
			Uplinks:        []string{h.Uplinks[0].Ifname, h.Uplinks[1].Ifname},
			PinPath:        filepath.Join(x.pins, h.Name),
			XDP:            xdp,
			ShimOffload:    off,
			DisableTrigger: true,
			FastReroute:    fr,
		}
		dp, lerr := dpebpf.Load(cfg)
		if lerr != nil {
			return lerr
		}
		if h == x.a {
			x.dpa = dp
		} else {
			x.dpb = dp
		}
	}
	return err
}

func (x *bench) unload() {
	for _, dp := range []*dpebpf.DataPlane{x.dpa, x.dpb} {
		if dp != nil {
			if err := dp.Destroy(); err != nil {
				log.Print(err)
			}
		}
	}
	x.dpa, x.dpb = nil, nil
}

func (x *bench) install(shim bool) error {
	ma := dataplane.Mapping{LocalULID: x.ulidA, PeerULID: x.ulidB, LocalLocator: x.ulidA, PeerLocator: x.ulidB, LocalTag: 0xa, PeerTag: 0xb}
	mb := dataplane.Mapping{LocalULID: x.ulidB, PeerULID: x.ulidA, LocalLocator: x.ulidB, PeerLocator: x.ulidA, LocalTag: 0xb, PeerTag: 0xa}
	if shim {
		ma.LocalLocator, ma.PeerLocator = x.altA, x.altB
		mb.LocalLocator, mb.PeerLocator = x.altB, x.altA
	}
	if x.fr {
		ma.Pairs = []dataplane.Pair{{Local: x.ulidA, Peer: x.ulidB}, {Local: x.altA, Peer: x.altB}}
		mb.Pairs = []dataplane.Pair{{Local: x.ulidB, Peer: x.ulidA}, {Local: x.altB, Peer: x.altA}}
		ma.Backup, mb.Backup = ma.Pairs[1], mb.Pairs[1]
		if shim {
			ma.Backup, mb.Backup = ma.Pairs[0], mb.Pairs[0]
		}
	}
	if err := x.dpa.Install(ma); err != nil {
		return err
	}
	return x.dpb.Install(mb)
}

func ethtool(h *netns.Host, dev string, args ...string) error {
	cmd := h.NS.Command(context.Background(), "ethtool", append([]string{"-K", dev}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := h.NS.Run(cmd); err != nil {
		return fmt.Errorf("ethtool -K %s %v: %v: %s", dev, args, err, out.Bytes())
	}
	return nil
}

func (x *bench) senderOffload(args ...string) error {
	for _, u := range x.a.Uplinks {
		if err := ethtool(x.a, u.Ifname, args...); err != nil {
			return err
		}
	}
	return nil
}

func (x *bench) scenarios() []scenario {
	none := func() error { return nil }
	return []scenario{
		{"plain, default offloads (no data plane)", func() error { x.unload(); return nil }, none},
		{"plain, TSO+GSO off on the sender (no data plane)", func() error {
			x.unload()
			return x.senderOffload("tso", "off", "gso", "off")
		}, func() error { return x.senderOffload("tso", "on", "gso", "on") }},
		{"plain, TSO off GSO on on the sender (no data plane)", func() error {
			x.unload()
			return x.senderOffload("tso", "off")
		}, func() error { return x.senderOffload("tso", "on") }},
		{"plain, data plane loaded, context on the ULIDs", func() error {
			if err := x.load(false, dpebpf.OffloadGSO); err != nil {
				return err
			}
			return x.install(false)
		}, none},
		{"plain, data plane with fast reroute, context on the ULIDs", func() error {
			if err := x.loadFR(false, dpebpf.OffloadGSO, true); err != nil {
				return err
			}
			return x.install(false)
		}, none},
		{"shimmed, shim device TSO off GSO on (default, veth segments)", func() error {
			if err := x.load(false, dpebpf.OffloadGSO); err != nil {
				return err
			}
			return x.install(true)
		}, none},
		{"shimmed, shim device TSO+GSO off, gso_max_segs 1 (TCP per packet)", func() error {
			if err := x.load(false, dpebpf.OffloadNone); err != nil {
				return err
			}
			return x.install(true)
		}, none},
		{"shimmed, XDP strip on the uplinks", func() error {
			if err := x.load(true, dpebpf.OffloadGSO); err != nil {
				return err
			}
			return x.install(true)
		}, none},
		{"plain, XDP strip loaded, context on the ULIDs", func() error {
			if err := x.load(true, dpebpf.OffloadGSO); err != nil {
				return err
			}
			return x.install(false)
		}, none},
	}
}

// throughput runs one TCP stream from a's ULID to b's ULID and returns
// Gbit/s over the measured interval.
func (x *bench) throughput(d time.Duration) (float64, error) {
	ln, err := x.b.NS.Listen("tcp6", net.JoinHostPort(x.ulidB.String(), "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type res struct {
		n   int64
		err error
	}
	counted := make(chan res, 1)
	var total atomicInt
	go func() {
		c, err := ln.Accept()
		if err != nil {
			counted <- res{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		for {
			n, err := c.Read(buf)
			total.add(int64(n))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				counted <- res{n: total.get(), err: err}
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := x.a.NS.Dial(ctx, &net.Dialer{LocalAddr: &net.TCPAddr{IP: x.ulidA.AsSlice()}}, "tcp6", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	stop := make(chan struct{})
	go func() {
		buf := make([]byte, 256<<10)
		for {
			select {
			case <-stop:
				c.Close()
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	time.Sleep(*warmup)
	n0, t0 := total.get(), time.Now()
	time.Sleep(d)
	n1, t1 := total.get(), time.Now()
	close(stop)
	r := <-counted
	if r.err != nil {
		return 0, r.err
	}
	return float64(n1-n0) * 8 / t1.Sub(t0).Seconds() / 1e9, nil
}

type progCost struct {
	host, prog string
	runs       uint64
	ns         float64
}

// costs measures ns per run of each program during one stream with
// kernel.bpf_stats_enabled.
func (x *bench) costs() ([]progCost, error) {
	stats, err := cebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return nil, fmt.Errorf("enable bpf_stats: %w", err)
	}
	defer stats.Close()
	before := map[string]dpebpf.ProgramStat{}
	snap := func(into map[string]dpebpf.ProgramStat) error {
		for _, h := range []struct {
			name string
			dp   *dpebpf.DataPlane
		}{{"a", x.dpa}, {"b", x.dpb}} {
			ps, err := h.dp.ProgramStats()
			if err != nil {
				return err
			}
			for _, p := range ps {
				into[h.name+"/"+p.Name] = p
			}
		}
		return nil
	}
	if err := snap(before); err != nil {
		return nil, err
	}
	if _, err := x.throughput(*duration); err != nil {
		return nil, err
	}
	after := map[string]dpebpf.ProgramStat{}
	if err := snap(after); err != nil {
		return nil, err
	}
	var out []progCost
	for k, a := range after {
		b := before[k]
		runs := a.RunCount - b.RunCount
		if runs == 0 {
			continue
		}
		host, prog, _ := strings.Cut(k, "/")
		out = append(out, progCost{host: host, prog: prog, runs: runs, ns: float64(a.Runtime-b.Runtime) / float64(runs)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].host+out[i].prog < out[j].host+out[j].prog })
	return out, nil
}

func (x *bench) run() error {
	var scs []scenario
	for i, sc := range x.scenarios() {
		if i < 2 || strings.Contains(sc.name, *only) {
			scs = append(scs, sc)
		}
	}
	results := make([][]float64, len(scs))
	for r := 0; r < *rounds; r++ {
		for i, sc := range scs {
			if err := sc.setup(); err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			g, err := x.throughput(*duration)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			if err := sc.clean(); err != nil {
				return err
			}
			results[i] = append(results[i], g)
			log.Printf("round %d: %-50s %6.2f Gbit/s", r+1, sc.name, g)
		}
	}
	med := make([]float64, len(scs))
	for i, rs := range results {
		s := slices.Clone(rs)
		slices.Sort(s)
		med[i] = s[len(s)/2]
	}
	fmt.Printf("| scenario | Gbit/s (median of %d x %v) | vs plain default | vs plain TSO+GSO off |\n| --- | ---: | ---: | ---: |\n", *rounds, *duration)
	for i, sc := range scs {
		fmt.Printf("| %s | %.2f | %.2fx | %.2fx |\n", sc.name, med[i], med[i]/med[0], med[i]/med[1])
	}

	if *noCosts {
		return nil
	}
	fmt.Printf("\n| program (host) | scenario | runs | ns/run |\n| --- | --- | ---: | ---: |\n")
	for _, c := range []struct {
		name    string
		xdp     bool
		shimmed bool
		fr      bool
	}{
		{"plain, context on the ULIDs", false, false, false},
		{"plain, context on the ULIDs, fast reroute", false, false, true},
		{"shimmed", false, true, false},
		{"shimmed, XDP strip", true, true, false},
	} {
		if err := x.loadFR(c.xdp, dpebpf.OffloadGSO, c.fr); err != nil {
			return err
		}
		if err := x.install(c.shimmed); err != nil {
			return err
		}
		costs, err := x.costs()
		if err != nil {
			return err
		}
		for _, p := range costs {
			fmt.Printf("| %s (%s) | %s | %d | %.0f |\n", p.prog, p.host, c.name, p.runs, p.ns)
		}
	}
	return nil
}
