package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted (as iproute2 does).
const RunDir = "/run/netns"

// Sentinel errors.
var (
	ErrExists   = errors.New("netns: namespace already exists")
	ErrNotFound = errors.New("netns: namespace not found")
	ErrBadName  = errors.New("netns: invalid namespace name")
	ErrClosed   = errors.New("netns: namespace handle closed")
)

var (
	runDirOnce sync.Once
	runDirErr  error
)

// NS is an open handle on a named network namespace.
type NS struct {
	name string

	mu     sync.Mutex // serialises netlink use and Close
	fd     int
	nl     *netlink.Handle
	closed bool
}

func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// Create makes a new, empty network namespace named name, brings its
// loopback up and returns an open handle. It fails with ErrExists when the
// name is taken.
func Create(name string) (*NS, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	runDirOnce.Do(func() { runDirErr = prepareRunDir() })
	if runDirErr != nil {
		return nil, fmt.Errorf("netns: prepare %s: %w", RunDir, runDirErr)
	}
	path := filepath.Join(RunDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrExists, name)
		}
		return nil, fmt.Errorf("netns: create %s: %w", name, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// This thread enters the new namespace and is never unlocked: the
		// runtime destroys it when the goroutine returns, so no other
		// goroutine ever runs in the wrong namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("netns: create %s: %w", name, err)
	}
	n, err := Open(name)
	if err != nil {
		_ = Remove(name)
		return nil, err
	}
	if err := n.LinkUp("lo"); err != nil {
		n.Delete()
		return nil, err
	}
	return n, nil
}

// Open opens the existing named namespace.
func Open(name string) (*NS, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(RunDir, name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return nil, fmt.Errorf("netns: open %s: %w", name, err)
	}
	// A name whose bind mount is gone is a plain empty file, not a
	// namespace: refuse it rather than setns into nonsense later.
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.NSFS_MAGIC {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is not a mounted namespace", ErrNotFound, name)
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(fd))
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netns: netlink in %s: %w", name, err)
	}
	return &NS{name: name, fd: fd, nl: h}, nil
}

// Remove deletes the named namespace's bind mount and file without needing
// an open handle (for leftovers). The namespace itself disappears once no
// process, socket or file descriptor holds it any more.
func Remove(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	path := filepath.Join(RunDir, name)
	// When /run/netns shares propagation with its parent mount, the bind
	// mount exists twice at the same path: unmount until none is left.
	for i := 0; i < 16; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("netns: unmount %s: %w", name, err)
		}
	}
	err := os.Remove(path)
	if errors.Is(err, unix.EBUSY) {
		err = removeHidden(path)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: remove %s: %w", name, err)
	}
	return nil
}

// removeHidden removes a name whose bind mount got covered: someone bind
// mounted RunDir onto itself after the namespace was created (iproute2
// does that when RunDir is not a mount point), so the mount sits on the
// directory underneath, unreachable by path, and unlink says EBUSY. In a
// private mount namespace of its own, one thread uncovers the directory,
// unmounts its copy and unlinks the file; the kernel then detaches the
// hidden mount everywhere (mounts on an unlinked dentry go away).
func removeHidden(path string) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's mount namespace differs from the
		// process's, so it must die with this goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		// Private first, so that nothing below propagates out.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make private: %w", err)
			return
		}
		for i := 0; i < 16 && unix.Unmount(RunDir, unix.MNT_DETACH) == nil; i++ {
		}
		for i := 0; i < 16 && unix.Unmount(path, unix.MNT_DETACH) == nil; i++ {
		}
		errc <- os.Remove(path)
	}()
	return <-errc
}

// prepareRunDir makes RunDir a shared mount point of its own, as iproute2
// does, so that a later `ip netns add` does not bind mount RunDir over the
// namespaces already mounted in it.
func prepareRunDir() error {
	err := unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil || !errors.Is(err, unix.EINVAL) {
		return err
	}
	// Not a mount point yet.
	if err := unix.Mount(RunDir, RunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("", RunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
}

// List returns the names under RunDir that start with prefix, sorted.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(RunDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Name returns the namespace's name.
func (n *NS) Name() string { return n.name }

// Path returns the namespace's bind-mount path, usable with setns(2) or
// `nsenter --net=PATH`.
func (n *NS) Path() string { return filepath.Join(RunDir, n.name) }

// Fd returns the namespace file descriptor (valid until Close).
func (n *NS) Fd() int { return n.fd }

// Close releases the handle. The namespace persists.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.nl.Close()
	return unix.Close(n.fd)
}

// Delete closes the handle and removes the namespace's name. Processes
// still running inside keep the namespace alive; kill them first (see PIDs).
func (n *NS) Delete() error {
	cerr := n.Close()
	rerr := Remove(n.name)
	return errors.Join(cerr, rerr)
}

// netlinkDo runs f with the namespace's netlink handle, serialised.
func (n *NS) netlinkDo(f func(h *netlink.Handle) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	return f(n.nl)
}

// Inode identifies the namespace (the number `ip netns identify` and
// /proc/PID/ns/net show as net:[INODE]).
func (n *NS) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(n.fd, &st); err != nil {
		return 0, fmt.Errorf("netns: %w", err)
	}
	return st.Ino, nil
}

// Do runs fn on an OS thread that is inside the namespace, and returns its
// error. Sockets fn creates belong to the namespace; goroutines fn starts
// do not run inside it. A panic in fn is re-raised in the caller.
func (n *NS) Do(fn func() error) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	fd := n.fd
	type result struct {
		err   error
		panic any
	}
	entered := make(chan error, 1)
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			entered <- fmt.Errorf("netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			entered <- fmt.Errorf("netns: setns %s: %w", n.name, err)
			return
		}
		entered <- nil
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panic = p
				}
			}()
			r.err = fn()
		}()
		// Only a thread back in its original namespace returns to the
		// scheduler; otherwise it stays locked and dies with the goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	// Hold mu until setns is done so that Close cannot pull fd away first.
	err := <-entered
	n.mu.Unlock()
	if err != nil {
		return err
	}
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// Start starts cmd inside the namespace (the child inherits the namespace
// of the thread that forks it). Use cmd.Wait as usual. Note that
// cmd.SysProcAttr.Pdeathsig fires when the forking thread exits; Do keeps
// that thread alive after a successful return to the original namespace.
func (n *NS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// Run starts cmd inside the namespace and waits for it.
func (n *NS) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Command is exec.CommandContext for a process that Start or Run will
// place in this namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// PIDs returns the processes whose network namespace is this one.
func (n *NS) PIDs() ([]int, error) {
	var want unix.Stat_t
	if err := unix.Fstat(n.fd, &want); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return pidsIn(want.Dev, want.Ino)
}

func pidsIn(dev, ino uint64) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) != nil {
			continue
		}
		if st.Dev == dev && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// sysctlPath turns "net.ipv6.conf.all.forwarding" or
// "net/ipv6/conf/all/forwarding" into a /proc/sys path. Use the slash form
// for keys containing interface names with dots.
func sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") {
		return "", fmt.Errorf("netns: bad sysctl key %q", key)
	}
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key), nil
}

// SetSysctl writes a sysctl inside the namespace.
func (n *NS) SetSysctl(key, value string) error {
	p, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return n.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("netns: sysctl %s=%s in %s: %w", key, value, n.name, err)
		}
		return nil
	})
}

// Sysctl reads a sysctl inside the namespace, without the trailing newline.
func (n *NS) Sysctl(key string) (string, error) {
	p, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	var v string
	err = n.Do(func() error {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("netns: sysctl %s in %s: %w", key, n.name, err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, err
}

// Listen is net.Listen inside the namespace.
func (n *NS) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenConfig is lc.Listen inside the namespace (for options such as
// SetMultipathTCP).
func (n *NS) ListenConfig(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside the namespace.
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// Dial connects from inside the namespace; d may be nil. The socket is
// created in the namespace; the (possibly slow) connect happens there too.
func (n *NS) Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
