package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/dataplane"
)

// DataPlane is the eBPF data plane of one host (one network namespace). It
// implements dataplane.DataPlane and dataplane.ActivitySource; events come
// from NewEventReader. Its methods are safe for concurrent use.
type DataPlane struct {
	cfg     Config
	log     *slog.Logger
	ns      nsRunner
	nl      *netlink.Handle
	objs    shim6Objects
	linkDir string

	mu       sync.Mutex
	links    map[string]link.Link
	clsact   map[tcHook]bool // hooks with our clsact filter
	uplinks  map[string]int  // name -> ifindex
	mappings map[uint64]dataplane.Mapping
	ruled    map[pairRule]bool // ULID pairs with shim rules
	adopted  []dataplane.Mapping
	// pairs: the fast-reroute pairs each context has in pair_map.
	pairs map[uint64][]dataplane.Pair
	// direct: the routes of ULID pairs as they were when not shimmed
	// (resolveAll).
	direct map[pairRule]route
	// gen: the last install generation (out_map); fr_map entries of
	// another generation are void.
	gen       uint32
	ncpu      int // possible CPUs: the length of per-CPU values
	shimIndex int
	peerIndex int
	closed    bool
}

// Load sets the data plane up, or adopts the one a previous loader left
// pinned under cfg.PinPath: BPF objects, shim device, policy table,
// attachments, and the installed mappings (see Mappings).
func Load(cfg Config) (_ *DataPlane, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkFeatures(cfg); err != nil {
		return nil, err
	}
	if cfg.CgroupPath == "" {
		if cfg.CgroupPath, err = cgroup2Root(); err != nil {
			return nil, err
		}
	}
	d := &DataPlane{
		cfg:      cfg,
		log:      cfg.Logger,
		linkDir:  filepath.Join(cfg.PinPath, "links"),
		links:    make(map[string]link.Link),
		clsact:   make(map[tcHook]bool),
		uplinks:  make(map[string]int),
		mappings: make(map[uint64]dataplane.Mapping),
		ruled:    make(map[pairRule]bool),
		pairs:    make(map[uint64][]dataplane.Pair),
		direct:   make(map[pairRule]route),
	}
	if d.ns, err = openNS(cfg.NetNS); err != nil {
		return nil, err
	}
	if d.ns.valid {
		d.nl, err = netlink.NewHandleAt(d.ns.ns)
	} else {
		d.nl, err = netlink.NewHandle()
	}
	if err != nil {
		d.ns.close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	if d.ncpu, err = cebpf.PossibleCPU(); err != nil {
		return nil, err
	}
	if err := ensureBPFFS(d.linkDir); err != nil {
		return nil, err
	}
	if err := d.loadObjects(); err != nil {
		return nil, err
	}
	if err := d.writeConfig(); err != nil {
		return nil, err
	}

	mtu := cfg.ShimMTU
	for _, name := range cfg.Uplinks {
		l, err := d.nl.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("uplink %s: %w", name, err)
		}
		d.uplinks[name] = l.Attrs().Index
		if cfg.ShimMTU == 0 && (mtu == 0 || l.Attrs().MTU-ShimHeaderLen < mtu) {
			mtu = l.Attrs().MTU - ShimHeaderLen
		}
	}
	if mtu == 0 {
		mtu = 1500 - ShimHeaderLen
	}
	if err := d.setupShimDevice(mtu); err != nil {
		return nil, err
	}
	if err := d.attachTC("tc_out_"+d.peerName(), d.objs.Shim6Out, tcHook{ifindex: d.peerIndex}); err != nil {
		return nil, err
	}
	if err := d.attachTC("tc_out_"+cfg.ShimDevice, d.objs.Shim6OutEgress, tcHook{ifindex: d.shimIndex, egress: true}); err != nil {
		return nil, err
	}
	for name, idx := range d.uplinks {
		if err := d.attachUplink(name, idx); err != nil {
			return nil, err
		}
	}
	if cfg.FastReroute && cfg.RerouteMark != 0 {
		if err := d.nl.RuleAdd(d.fwmarkRule()); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("fast reroute mark rule: %w", err)
		}
	} else if err := d.delFwmarkRule(); err != nil {
		return nil, fmt.Errorf("fast reroute mark rule: %w", err)
	}
	if err := d.attachCgroup("cg_egress", d.objs.Shim6CgEgress, cebpf.AttachCGroupInetEgress); err != nil {
		return nil, err
	}
	if err := d.attachCgroup("sockops", d.objs.Shim6Sockops, cebpf.AttachCGroupSockOps); err != nil {
		return nil, err
	}
	// Links of uplinks that are no longer configured.
	for _, name := range d.pinnedLinks() {
		if _, ok := d.links[name]; !ok {
			d.log.Info("detaching link of a removed uplink", "link", name)
			if err := d.detach(name); err != nil {
				return nil, err
			}
		}
	}
	if err := d.adoptMappings(); err != nil {
		return nil, err
	}
	d.log.Info("shim6 data plane loaded", "pin", cfg.PinPath, "uplinks", cfg.Uplinks,
		"shim", cfg.ShimDevice, "mtu", mtu, "mappings", len(d.mappings))
	return d, nil
}

func (d *DataPlane) loadObjects() error {
	spec, err := loadShim6()
	if err != nil {
		return err
	}
	for _, name := range []string{shim6MapOutMap, shim6MapInMap, shim6MapIcmpMap, shim6MapActivityMap, shim6MapFrMap} {
		spec.Maps[name].MaxEntries = d.cfg.MaxContexts
	}
	spec.Maps[shim6MapPairMap].MaxEntries = d.cfg.MaxContexts * 4
	if !haveCgroupNetnsCookie() {
		d.log.Warn("kernel lacks bpf_get_netns_cookie for cgroup_skb: transmit activity and triggers count sockets of all network namespaces")
		if err := spec.Variables[shim6VarCgHaveNetnsCookie].Set(uint32(0)); err != nil {
			return err
		}
	}
	err = spec.LoadAndAssign(&d.objs, &cebpf.CollectionOptions{Maps: cebpf.MapOptions{PinPath: d.cfg.PinPath}})
	if errors.Is(err, cebpf.ErrMapIncompatible) {
		return fmt.Errorf("%w under %s (Destroy them first): %v", ErrIncompatiblePin, d.cfg.PinPath, err)
	}
	var ve *cebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%w: the verifier rejected a shim6 program (BPF atomics need Linux 5.12): %v", ErrKernelFeature, ve)
	}
	if err != nil {
		return fmt.Errorf("load BPF objects: %w", err)
	}
	return nil
}

func (d *DataPlane) writeConfig() error {
	var cookie uint64
	err := d.ns.do(func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		return err
	})
	if err != nil {
		// Linux < 5.14: the cgroup programs see every namespace.
		d.log.Warn("no network namespace cookie", "err", err)
		cookie = 0
	}
	c := shim6Config{
		NetnsCookie:    cookie,
		TriggerPackets: d.cfg.TriggerPackets,
		EventWindowNs:  uint64(d.cfg.EventWindow),
		EventBurst:     d.cfg.EventBurst,
		FrMark:         d.cfg.RerouteMark,
	}
	if d.cfg.DisableTrigger {
		c.TriggerPackets = 0
	}
	if d.cfg.UnknownTagPass {
		c.Flags |= cfgFlagUnknownTagPass
	}
	if d.cfg.NoICMPTranslate {
		c.Flags |= cfgFlagNoICMPTranslate
	}
	return d.objs.ConfigMap.Put(uint32(0), &c)
}

func (d *DataPlane) attachUplink(name string, ifindex int) error {
	if err := d.attachTC("tc_in_"+name, d.objs.Shim6In, tcHook{ifindex: ifindex}); err != nil {
		return err
	}
	if d.cfg.FastReroute {
		if err := d.attachTC("tc_reroute_"+name, d.objs.Shim6Reroute, tcHook{ifindex: ifindex, egress: true}); err != nil {
			return err
		}
	}
	if d.cfg.XDP {
		return d.attachXDP("xdp_"+name, d.objs.Shim6Xdp, ifindex)
	}
	return nil
}

// AddUplink attaches the receive programs to one more interface.
func (d *DataPlane) AddUplink(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	l, err := d.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("uplink %s: %w", name, err)
	}
	if err := d.attachUplink(name, l.Attrs().Index); err != nil {
		return err
	}
	d.uplinks[name] = l.Attrs().Index
	return nil
}

// RemoveUplink detaches the receive programs from an interface.
func (d *DataPlane) RemoveUplink(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	idx, ok := d.uplinks[name]
	if !ok {
		return nil
	}
	delete(d.uplinks, name)
	return errors.Join(d.detach("tc_in_"+name), d.detach("tc_reroute_"+name), d.detach("xdp_"+name),
		d.detachClsact(tcHook{ifindex: idx}), d.detachClsact(tcHook{ifindex: idx, egress: true}))
}

// adoptMappings rebuilds the mapping table from the pinned maps and makes
// the policy rules agree with it.
func (d *DataPlane) adoptMappings() error {
	var tag uint64
	var v shim6InVal
	it := d.objs.InMap.Iterate()
	for it.Next(&tag, &v) {
		d.mappings[tag] = mappingFromIn(tag, v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read in_map: %w", err)
	}
	var pk shim6PairKey
	var pv shim6PairVal
	pit := d.objs.PairMap.Iterate()
	for pit.Next(&pk, &pv) {
		d.pairs[pk.LocalTag] = append(d.pairs[pk.LocalTag], dataplane.Pair{Local: netip.AddrFrom16(pk.Local), Peer: netip.AddrFrom16(pk.Peer)})
	}
	if err := pit.Err(); err != nil {
		return fmt.Errorf("read pair_map: %w", err)
	}
	var ok shim6UlidPair
	var ov shim6OutVal
	oit := d.objs.OutMap.Iterate()
	for oit.Next(&ok, &ov) {
		d.gen = max(d.gen, ov.Gen)
	}
	have, err := d.listRules()
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	want := make(map[pairRule]bool)
	for _, m := range d.mappings {
		if m.FII == 0 && m.Shimmed() {
			want[pairRule{m.LocalULID, m.PeerULID}] = true
			// The uplink's index may have changed while nobody watched.
			if r, err := d.resolve(m.LocalLocator, m.PeerLocator); err == nil {
				if err := d.setRoute(m, r); err != nil {
					return err
				}
			} else {
				d.log.Warn("adopted mapping has no route", "tag", m.LocalTag, "err", err)
			}
		}
	}
	for p := range have {
		if !want[p] {
			if err := d.delRules(p.local, p.peer); err != nil {
				return err
			}
		}
	}
	for p := range want {
		if err := d.addRules(p.local, p.peer); err != nil {
			return err
		}
		d.ruled[p] = true
	}
	for _, m := range d.mappings {
		d.adopted = append(d.adopted, m)
	}
	return nil
}

// Install implements dataplane.DataPlane. A shimmed mapping (locators
// differ from the ULIDs) needs a route from the local to the peer locator;
// its packets leave through that route's interface. Only the default
// context of a ULID pair (FII 0) carries outbound traffic; forked contexts
// (RFC 5533 §4.2) are installed for receiving only.
func (d *DataPlane) Install(m dataplane.Mapping) error {
	if err := validate(m); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	old, hadOld := d.mappings[m.LocalTag]
	if hadOld && (old.LocalULID != m.LocalULID || old.PeerULID != m.PeerULID || old.FII != m.FII) {
		if err := d.remove(old.LocalTag); err != nil {
			return err
		}
		hadOld = false
	}
	pair := pairRule{m.LocalULID, m.PeerULID}
	outbound := m.FII == 0

	var r route
	if m.Shimmed() && outbound {
		var err error
		if r, err = d.resolve(m.LocalLocator, m.PeerLocator); err != nil {
			return err
		}
		if d.cfg.FastReroute {
			_ = d.warmNeighbours([]route{r})
		}
	}
	// Leaving the shim device: first the rules, so that sockets re-route
	// to the uplink while packets already in the shim device still find
	// their (shimmed) mapping.
	if outbound && !m.Shimmed() && d.ruled[pair] {
		if err := d.delRules(pair.local, pair.peer); err != nil {
			return err
		}
		delete(d.ruled, pair)
	}
	// Fast reroute: the pairs the context may move to, with their
	// routes, written before the mapping that refers to them.
	if outbound {
		if _, ok := d.direct[pair]; !ok {
			d.direct[pair] = route{}
		}
	}
	fr := d.installPairs(m, outbound)
	zero := make([]shim6Activity, d.ncpu)
	if err := d.objs.ActivityMap.Update(m.LocalTag, zero, cebpf.UpdateNoExist); err != nil && !errors.Is(err, cebpf.ErrKeyExist) {
		return fmt.Errorf("activity entry: %w", err)
	}
	if hadOld && old.Shimmed() && (!m.Shimmed() || icmpKey(old) != icmpKey(m)) {
		if err := d.objs.IcmpMap.Delete(icmpKey(old)); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			return err
		}
	}
	if m.Shimmed() {
		if err := d.objs.IcmpMap.Put(icmpKey(m), icmpValue(m)); err != nil {
			return fmt.Errorf("icmp_map: %w", err)
		}
	}
	iv := inValue(m)
	frIn(&iv, m, fr.follow)
	if err := d.objs.InMap.Put(m.LocalTag, iv); err != nil {
		return fmt.Errorf("in_map: %w", err)
	}
	if outbound {
		// A new generation: it ends any move of the pair's traffic
		// (fr_map entries of older generations are void).
		d.gen++
		if !m.Shimmed() && fr.pass.ifindex != 0 {
			r = fr.pass
		}
		ov := outValue(m, r)
		if !m.Shimmed() && fr.pass.ifindex != 0 {
			ov.Flags |= outFlagPass
		}
		frOut(&ov, m, d.gen, fr.backup, fr.follow, monoNs(m.BackupAfter))
		if err := d.objs.OutMap.Put(pairKey(m.LocalULID, m.PeerULID), ov); err != nil {
			return fmt.Errorf("out_map: %w", err)
		}
		// The pair has a context now: the trigger has done its job.
		_ = d.objs.TriggerMap.Delete(pairKey(m.LocalULID, m.PeerULID))
	}
	d.dropPairs(m.LocalTag, fr.pairs)
	d.mappings[m.LocalTag] = m
	// Entering the shim device: rules last, once the mapping is there.
	if outbound && m.Shimmed() && !d.ruled[pair] {
		if err := d.addRules(pair.local, pair.peer); err != nil {
			return err
		}
		d.ruled[pair] = true
	}
	return nil
}

// Remove implements dataplane.DataPlane.
func (d *DataPlane) Remove(localTag uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.remove(localTag)
}

func (d *DataPlane) remove(tag uint64) error {
	m, ok := d.mappings[tag]
	if !ok {
		return nil
	}
	pair := pairRule{m.LocalULID, m.PeerULID}
	var errs []error
	notExist := func(err error) error {
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			return nil
		}
		return err
	}
	if m.FII == 0 {
		// Only if the pair's outbound state is this context's (a newer
		// context of the same ULID pair may have taken it over).
		var v shim6OutVal
		key := pairKey(m.LocalULID, m.PeerULID)
		if d.objs.OutMap.Lookup(key, &v) == nil && v.LocalTag == tag {
			if d.ruled[pair] {
				errs = append(errs, d.delRules(pair.local, pair.peer))
				delete(d.ruled, pair)
			}
			errs = append(errs, notExist(d.objs.OutMap.Delete(key)), notExist(d.objs.FrMap.Delete(key)))
			delete(d.direct, pair)
		}
	}
	d.dropPairs(tag, nil)
	if m.Shimmed() {
		errs = append(errs, notExist(d.objs.IcmpMap.Delete(icmpKey(m))))
	}
	errs = append(errs, notExist(d.objs.InMap.Delete(tag)), notExist(d.objs.ActivityMap.Delete(tag)))
	delete(d.mappings, tag)
	return errors.Join(errs...)
}

// frInstall is what installPairs wrote for one mapping.
type frInstall struct {
	pairs  []dataplane.Pair // in pair_map
	backup bool             // the backup pair is among them
	follow bool             // the context may follow the peer
	pass   route            // the ULID pair's own route (unshimmed mappings)
}

// installPairs writes the fast-reroute pairs of m (its Pairs, at most
// MaxPairsPerContext, and its Backup) that have a route into pair_map.
func (d *DataPlane) installPairs(m dataplane.Mapping, outbound bool) frInstall {
	var fr frInstall
	if !d.cfg.FastReroute || !outbound || (!m.Backup.IsValid() && len(m.Pairs) == 0) {
		return fr
	}
	want := make([]dataplane.Pair, 0, min(len(m.Pairs), d.cfg.MaxPairsPerContext)+2)
	for _, p := range m.Pairs {
		if len(want) == d.cfg.MaxPairsPerContext {
			break
		}
		if p.IsValid() && p != m.Current() {
			want = append(want, p)
		}
	}
	if m.Backup.IsValid() && m.Backup != m.Current() && !slices.Contains(want, m.Backup) {
		want = append(want, m.Backup)
	}
	// The ULID pair's own route, for sockets still marked into the shim
	// device after a move ended.
	want = append(want, m.ULIDs())
	routes := d.resolveAll(want)
	fr.pass = routes[len(routes)-1]
	want, routes = want[:len(want)-1], routes[:len(routes)-1]
	macs := d.warmNeighbours(routes)
	for i, p := range want {
		if routes[i].ifindex == 0 {
			continue
		}
		if err := d.putPair(pairMapKey(m.LocalTag, p), routes[i], macs); err != nil {
			d.log.Warn("fast reroute pair", "tag", m.LocalTag, "pair", p, "err", err)
			continue
		}
		fr.pairs = append(fr.pairs, p)
		fr.backup = fr.backup || p == m.Backup
	}
	fr.follow = len(fr.pairs) > 0 && len(m.Pairs) > 0
	return fr
}

// dropPairs deletes the pair_map entries of a context that are not in
// keep, and records keep as its entries.
func (d *DataPlane) dropPairs(tag uint64, keep []dataplane.Pair) {
	for _, p := range d.pairs[tag] {
		if !slices.Contains(keep, p) {
			if err := d.objs.PairMap.Delete(pairMapKey(tag, p)); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
				d.log.Warn("fast reroute pair", "tag", tag, "pair", p, "err", err)
			}
		}
	}
	if len(keep) == 0 {
		delete(d.pairs, tag)
	} else {
		d.pairs[tag] = keep
	}
}

// monoNs converts an instant to CLOCK_MONOTONIC nanoseconds, the BPF
// programs' clock (0 for the zero time or the past).
func monoNs(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	ns := monotonic() + time.Until(t)
	if ns <= 0 {
		return 0
	}
	return uint64(ns)
}

// RefreshRoutes resolves the uplink and next hop of every shimmed mapping
// again (call it when routes change), and of the fast-reroute pairs.
// Mappings whose locator pair lost its route keep the old one; the error
// names them (wrapping ErrNoRoute).
func (d *DataPlane) RefreshRoutes() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	var errs []error
	for _, m := range d.mappings {
		if m.FII != 0 {
			continue
		}
		if ps := d.pairs[m.LocalTag]; len(ps) > 0 {
			routes := d.resolveAll(ps)
			macs := d.warmNeighbours(routes)
			for i, r := range routes {
				if r.ifindex != 0 {
					errs = append(errs, d.putPair(pairMapKey(m.LocalTag, ps[i]), r, macs))
				}
			}
		}
		if !m.Shimmed() {
			continue
		}
		r, err := d.resolve(m.LocalLocator, m.PeerLocator)
		if err != nil {
			errs = append(errs, fmt.Errorf("context %#x: %w", m.LocalTag, err))
			continue
		}
		errs = append(errs, d.setRoute(m, r))
	}
	return errors.Join(errs...)
}

// KeepNeighbours keeps the next hops of the fast-reroute pairs resolved
// and their link-layer addresses in pair_map up to date (see
// warmNeighbours): a neighbour entry unused for long may be collected, and
// the first packets of a move would be lost while it is resolved again.
// Call it every few tens of seconds; it reads pair_map and one neighbour
// table per uplink, and writes only entries whose addresses changed.
func (d *DataPlane) KeepNeighbours() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if !d.cfg.FastReroute {
		return nil
	}
	type entry struct {
		k shim6PairKey
		v shim6PairVal
		r route
	}
	var entries []entry
	var routes []route
	var k shim6PairKey
	var v shim6PairVal
	it := d.objs.PairMap.Iterate()
	for it.Next(&k, &v) {
		r := route{ifindex: int(v.Ifindex)}
		if v.Nh.Family == afInet6 {
			r.nexthop = netip.AddrFrom16(v.Nh.Addr)
		}
		entries = append(entries, entry{k, v, r})
		routes = append(routes, r)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pair_map: %w", err)
	}
	macs := d.warmNeighbours(routes)
	var errs []error
	for _, e := range entries {
		la, ok := macs[e.r]
		if ok && (e.v.Flags&pairFlagMAC == 0 || e.v.Dmac != la.dst || e.v.Smac != la.src) {
			errs = append(errs, d.putPair(e.k, e.r, macs))
		}
	}
	return errors.Join(errs...)
}

// setRoute changes the uplink and next hop of a mapping's out_map entry,
// keeping the rest (fast-reroute fields, generation) as installed.
func (d *DataPlane) setRoute(m dataplane.Mapping, r route) error {
	key := pairKey(m.LocalULID, m.PeerULID)
	var v shim6OutVal
	if err := d.objs.OutMap.Lookup(key, &v); err != nil || v.LocalTag != m.LocalTag {
		v = outValue(m, r)
	}
	n := outValue(m, r)
	v.Nh, v.Ifindex = n.Nh, n.Ifindex
	return d.objs.OutMap.Put(key, v)
}

// Mappings returns the installed mappings (after Load: those a previous
// loader left behind).
func (d *DataPlane) Mappings() []dataplane.Mapping {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]dataplane.Mapping, 0, len(d.mappings))
	for _, m := range d.mappings {
		out = append(out, m)
	}
	return out
}

// Adopted returns the mappings Load found pinned by a previous loader
// (empty when it started fresh).
func (d *DataPlane) Adopted() []dataplane.Mapping {
	return append([]dataplane.Mapping(nil), d.adopted...)
}

// Kind names the data plane ("ebpf").
func (d *DataPlane) Kind() string { return "ebpf" }

// Counters returns Stats as a plain map (zero on error).
func (d *DataPlane) Counters() map[string]uint64 {
	s, err := d.Stats()
	if err != nil {
		return map[string]uint64{}
	}
	return s
}

// Run delivers the data plane's events to fn until ctx is done (see
// EventReader).
func (d *DataPlane) Run(ctx context.Context, fn func(dataplane.Event)) error {
	r, err := d.NewEventReader()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Run(ctx, fn)
}

// Stop is Close when keep is true (the data plane keeps forwarding for the
// next Load to adopt) and Destroy otherwise.
func (d *DataPlane) Stop(keep bool) error {
	if keep {
		return d.Close()
	}
	return d.Destroy()
}

// ResetTrigger forgets the trigger counters of a ULID pair, so that it can
// raise another EventTrigger (for example after a failed establishment).
func (d *DataPlane) ResetTrigger(local, peer netip.Addr) error {
	err := d.objs.TriggerMap.Delete(pairKey(local, peer))
	if errors.Is(err, cebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// monotonic is CLOCK_MONOTONIC, bpf_ktime_get_ns()'s clock.
func monotonic() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// wallClock converts a bpf_ktime_get_ns() instant.
func wallClock(ns uint64, now time.Time, mono time.Duration) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(ns) - mono)
}

// ReadActivity implements dataplane.ActivitySource, reading the activity
// map in batches.
func (d *DataPlane) ReadActivity(fn func(dataplane.Activity)) error {
	now, mono := time.Now(), monotonic()
	emit := func(tag uint64, a shim6Activity) {
		fn(dataplane.Activity{
			LocalTag:     tag,
			LastSent:     wallClock(a.LastTxNs, now, mono),
			LastReceived: wallClock(a.LastRxNs, now, mono),
			FirstSent:    wallClock(a.FirstTxNs, now, mono),
			TxPackets:    a.TxPackets,
			TxBytes:      a.TxBytes,
			RxPackets:    a.RxPackets,
			RxBytes:      a.RxBytes,
		})
	}
	const batch = 256
	keys := make([]uint64, batch)
	vals := make([]shim6Activity, batch*d.ncpu)
	var cursor cebpf.MapBatchCursor
	for {
		n, err := d.objs.ActivityMap.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			emit(keys[i], sumActivity(vals[i*d.ncpu:(i+1)*d.ncpu]))
		}
		if errors.Is(err, cebpf.ErrKeyNotExist) {
			return nil
		}
		if errors.Is(err, cebpf.ErrNotSupported) {
			break
		}
		if err != nil {
			return fmt.Errorf("read activity: %w", err)
		}
	}
	// Kernels without batch operations (< 5.6).
	var tag uint64
	var per []shim6Activity
	it := d.objs.ActivityMap.Iterate()
	for it.Next(&tag, &per) {
		emit(tag, sumActivity(per))
	}
	return it.Err()
}

// Stats returns the per-reason counters summed over CPUs.
func (d *DataPlane) Stats() (Stats, error) {
	return readStats(d.objs.StatsMap)
}

func readStats(m *cebpf.Map) (Stats, error) {
	s := make(Stats, len(statNames))
	for i, name := range statNames {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("stats %s: %w", name, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		s[name] = sum
	}
	return s, nil
}

// ProgramStat is the run count and total run time of one BPF program, as
// the kernel counts them while kernel.bpf_stats_enabled is 1.
type ProgramStat struct {
	Name     string
	RunCount uint64
	Runtime  time.Duration
}

// ProgramStats returns the kernel's run-time statistics of each program.
func (d *DataPlane) ProgramStats() ([]ProgramStat, error) {
	return programStats(&d.objs.shim6Programs)
}

func programStats(p *shim6Programs) ([]ProgramStat, error) {
	var out []ProgramStat
	for _, x := range []struct {
		name string
		prog *cebpf.Program
	}{
		{shim6ProgShim6Out, p.Shim6Out}, {shim6ProgShim6OutEgress, p.Shim6OutEgress},
		{shim6ProgShim6In, p.Shim6In}, {shim6ProgShim6Xdp, p.Shim6Xdp},
		{shim6ProgShim6CgEgress, p.Shim6CgEgress}, {shim6ProgShim6Sockops, p.Shim6Sockops},
		{shim6ProgShim6Reroute, p.Shim6Reroute},
	} {
		st, err := x.prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", x.name, err)
		}
		out = append(out, ProgramStat{Name: x.name, RunCount: st.RunCount, Runtime: st.Runtime})
	}
	return out, nil
}

// ShimDevice returns the names and interface indexes of the shim device
// and its peer.
func (d *DataPlane) ShimDevice() (name string, index int, peer string, peerIndex int) {
	return d.cfg.ShimDevice, d.shimIndex, d.peerName(), d.peerIndex
}

// Close releases the loader's handles but leaves the data plane running:
// pinned maps and links, the shim device and the rules stay, and the next
// Load adopts them. Use Destroy to take everything down.
func (d *DataPlane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for _, l := range d.links {
		l.Close()
	}
	err := d.objs.Close()
	if d.nl != nil {
		d.nl.Close()
	}
	d.ns.close()
	return err
}

// Destroy removes everything the data plane set up: rules, attachments
// (pinned links and clsact filters), the shim device and its table, and
// the pinned maps. Traffic of shimmed pairs falls back to the ULIDs.
func (d *DataPlane) Destroy() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	var errs []error
	if rules, err := d.listRules(); err == nil {
		for p := range rules {
			errs = append(errs, d.delRules(p.local, p.peer))
		}
	} else {
		errs = append(errs, err)
	}
	d.ruled = map[pairRule]bool{}
	for _, name := range d.pinnedLinks() {
		errs = append(errs, d.detach(name))
	}
	for name := range d.links {
		errs = append(errs, d.detach(name))
	}
	for hook := range d.clsact {
		errs = append(errs, d.detachClsact(hook))
	}
	if d.cfg.ForceClsact {
		for _, idx := range d.uplinks {
			errs = append(errs, d.detachClsact(tcHook{ifindex: idx}))
		}
	}
	errs = append(errs, d.removeShimDevice())
	for _, m := range []*cebpf.Map{
		d.objs.OutMap, d.objs.InMap, d.objs.IcmpMap, d.objs.ActivityMap, d.objs.TriggerMap,
		d.objs.ConfigMap, d.objs.StatsMap, d.objs.RatelimitMap, d.objs.Events,
		d.objs.FrMap, d.objs.PairMap, d.objs.LdHoldMap, d.objs.LdStateMap, d.objs.LdConnMap,
	} {
		errs = append(errs, m.Unpin())
	}
	os.Remove(d.linkDir)
	os.Remove(d.cfg.PinPath)
	d.mu.Unlock()
	errs = append(errs, d.Close())
	return errors.Join(errs...)
}
