package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attachments are bpf links pinned under PinPath/links/NAME, so that they
// outlive the daemon; a restarted loader finds them and swaps in its own
// programs atomically (BPF_LINK_UPDATE), so forwarding never stops. Where
// tcx is missing (Linux < 6.6) tc programs go into a clsact qdisc through
// netlink instead; the filter itself keeps the program alive.

const (
	clsactHandle   = 0x5336 // filter handle of our clsact filters
	clsactPriority = 1
	clsactName     = "goshim6"
)

func (d *DataPlane) linkPath(name string) string { return filepath.Join(d.linkDir, name) }

// adopt loads the pinned link name and points it at prog. ok is false when
// there is no usable pinned link (a stale one is removed).
func (d *DataPlane) adopt(name string, prog *cebpf.Program, check func(*link.Info) bool) (bool, error) {
	path := d.linkPath(name)
	l, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		d.log.Warn("removing unusable pinned link", "link", name, "err", err)
		os.Remove(path)
		return false, nil
	}
	if check != nil {
		info, err := l.Info()
		if err != nil || !check(info) {
			d.log.Info("replacing stale pinned link", "link", name)
			l.Unpin()
			l.Close()
			return false, nil
		}
	}
	if err := l.Update(prog); err != nil {
		d.log.Info("replacing pinned link that cannot be updated", "link", name, "err", err)
		l.Unpin()
		l.Close()
		return false, nil
	}
	d.links[name] = l
	d.log.Debug("adopted pinned link", "link", name)
	return true, nil
}

func (d *DataPlane) pin(name string, l link.Link) error {
	if err := l.Pin(d.linkPath(name)); err != nil {
		l.Close()
		return fmt.Errorf("pin link %s: %w", name, err)
	}
	d.links[name] = l
	return nil
}

// tcHook is one tc attachment point.
type tcHook struct {
	ifindex int
	egress  bool
}

func (h tcHook) attachType() cebpf.AttachType {
	if h.egress {
		return cebpf.AttachTCXEgress
	}
	return cebpf.AttachTCXIngress
}

func (h tcHook) parent() uint32 {
	if h.egress {
		return netlink.HANDLE_MIN_EGRESS
	}
	return netlink.HANDLE_MIN_INGRESS
}

// attachTC attaches prog to a tc hook of the interface ifindex: tcx when
// the kernel has it, else a clsact filter.
func (d *DataPlane) attachTC(name string, prog *cebpf.Program, hook tcHook) error {
	ifindex := hook.ifindex
	if !d.cfg.ForceClsact {
		ok, err := d.adopt(name, prog, func(i *link.Info) bool {
			t := i.TCX()
			return t != nil && int(t.Ifindex) == ifindex && cebpf.AttachType(t.AttachType) == hook.attachType()
		})
		if err != nil || ok {
			return err
		}
		var l link.Link
		err = d.ns.do(func() error {
			var err error
			l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: hook.attachType()})
			return err
		})
		if err == nil {
			return d.pin(name, l)
		}
		if !errors.Is(err, link.ErrNotSupported) {
			return fmt.Errorf("attach %s (tcx): %w", name, err)
		}
		d.log.Info("tcx not supported, falling back to clsact", "link", name)
	}
	return d.attachClsact(prog, hook)
}

func (d *DataPlane) attachClsact(prog *cebpf.Program, hook tcHook) error {
	ifindex := hook.ifindex
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := d.nl.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add clsact qdisc on ifindex %d: %w", ifindex, err)
	}
	f := d.clsactFilter(hook)
	f.Fd = prog.FD()
	if err := d.nl.FilterReplace(f); err != nil {
		return fmt.Errorf("add clsact filter on ifindex %d: %w", ifindex, err)
	}
	d.clsact[hook] = true
	return nil
}

func (d *DataPlane) clsactFilter(hook tcHook) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: hook.ifindex,
			Parent:    hook.parent(),
			Handle:    clsactHandle,
			Protocol:  unix.ETH_P_ALL,
			Priority:  clsactPriority,
		},
		Name:         clsactName,
		DirectAction: true,
	}
}

func (d *DataPlane) detachClsact(hook tcHook) error {
	err := d.nl.FilterDel(d.clsactFilter(hook))
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) {
		return err
	}
	delete(d.clsact, hook)
	return nil
}

func (d *DataPlane) attachXDP(name string, prog *cebpf.Program, ifindex int) error {
	ok, err := d.adopt(name, prog, func(i *link.Info) bool {
		x := i.XDP()
		return x != nil && int(x.Ifindex) == ifindex
	})
	if err != nil || ok {
		return err
	}
	var l link.Link
	err = d.ns.do(func() error {
		var err error
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: d.cfg.XDPFlags})
		return err
	})
	if err != nil {
		return fmt.Errorf("attach %s: %w", name, err)
	}
	return d.pin(name, l)
}

func (d *DataPlane) attachCgroup(name string, prog *cebpf.Program, typ cebpf.AttachType) error {
	ok, err := d.adopt(name, prog, nil)
	if err != nil || ok {
		return err
	}
	l, err := link.AttachCgroup(link.CgroupOptions{Path: d.cfg.CgroupPath, Attach: typ, Program: prog})
	if err != nil {
		return fmt.Errorf("attach %s to cgroup %s: %w", name, d.cfg.CgroupPath, err)
	}
	return d.pin(name, l)
}

// detach removes the pinned link name (which detaches the program).
func (d *DataPlane) detach(name string) error {
	l, ok := d.links[name]
	if !ok {
		var err error
		l, err = link.LoadPinnedLink(d.linkPath(name), nil)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return os.Remove(d.linkPath(name))
		}
	}
	delete(d.links, name)
	uerr := l.Unpin()
	cerr := l.Close()
	return errors.Join(uerr, cerr)
}

// pinnedLinks lists the names of the links pinned in the link directory.
func (d *DataPlane) pinnedLinks() []string {
	ents, err := os.ReadDir(d.linkDir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// cgroup2Root returns the mount point of the first cgroup2 file system.
func cgroup2Root() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		// mountinfo: ID parent major:minor root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(line)
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", fmt.Errorf("%w: no cgroup v2 file system mounted", ErrKernelFeature)
}
