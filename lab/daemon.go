package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
)

// DaemonConfig is what a lab run sets in a shim6d's configuration file.
type DaemonConfig struct {
	// DataPlane is "ebpf" (default) or "memory".
	DataPlane string
	// SendTimeout is REAP's Send Timeout (default: the RFC's 15 s).
	SendTimeout time.Duration
	// ActivityPoll is how often shim6d reads the data plane's activity
	// (default: SendTimeout/10, between 50 ms and 1 s).
	ActivityPoll time.Duration
	// Trigger is the number of packets between two ULIDs that makes
	// shim6d establish a context (0: shim6d's default; negative: never,
	// contexts then come only from the API).
	Trigger int
	// KeepOnExit keeps the data plane across a restart.
	KeepOnExit bool
	// Security is "hba" (default), "cga" or "insecure".
	Security string
	// LogLevel is shim6d's log level (default "info").
	LogLevel string
	// REAPExtra is added to the [reap] table as is (e.g.
	// "ulp_feedback = false").
	REAPExtra string
	// DataPlaneExtra is added to the [dataplane] table as is (e.g.
	// "fast_reroute = false").
	DataPlaneExtra string
	// Extra is appended to the generated TOML as is (for keys this
	// struct does not know yet).
	Extra string
}

func (c DaemonConfig) withDefaults() DaemonConfig {
	if c.DataPlane == "" {
		c.DataPlane = "ebpf"
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 15 * time.Second
	}
	if c.ActivityPoll == 0 {
		c.ActivityPoll = min(max(c.SendTimeout/10, 50*time.Millisecond), time.Second)
	}
	if c.Security == "" {
		c.Security = "hba"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return c
}

// toml renders the configuration for a daemon working in dir.
func (c DaemonConfig) toml(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by goshim6 lab\nstate_dir = %q\nsocket = %q\n", filepath.Join(dir, "state"), filepath.Join(dir, "run", "shim6d.sock"))
	fmt.Fprintf(&b, "[reap]\nsend_timeout = %q\nactivity_poll = %q\n", c.SendTimeout.String(), c.ActivityPoll.String())
	if c.REAPExtra != "" {
		b.WriteString(c.REAPExtra + "\n")
	}
	if c.Trigger != 0 {
		fmt.Fprintf(&b, "[trigger]\npackets = %d\n", max(c.Trigger, 0))
	}
	fmt.Fprintf(&b, "[security]\nmode = %q\n", c.Security)
	fmt.Fprintf(&b, "[dataplane]\nkind = %q\nkeep_on_exit = %t\npin_dir = %q\n", c.DataPlane, c.KeepOnExit, filepath.Join(dir, "bpf", "goshim6"))
	if c.DataPlaneExtra != "" {
		b.WriteString(c.DataPlaneExtra + "\n")
	}
	fmt.Fprintf(&b, "[log]\nlevel = %q\n", c.LogLevel)
	if c.Extra != "" {
		b.WriteString(c.Extra)
		b.WriteByte('\n')
	}
	return b.String()
}

// Daemon is a shim6d running inside a lab host.
type Daemon struct {
	Name   string // the host's name, "a"
	NS     *netns.NS
	Bin    string
	Config DaemonConfig
	Dir    string // config, state, socket, log and bpffs live here
	Socket string
	Log    string

	mu     sync.Mutex
	proc   *Proc
	client *api.Client
	mount  string // bpffs mounted by us
}

// StartDaemon writes a configuration under dir and starts shim6d (the
// binary bin) inside n. It returns once the management API answers.
func StartDaemon(ctx context.Context, n *netns.NS, name, bin, dir string, cfg DaemonConfig) (*Daemon, error) {
	cfg = cfg.withDefaults()
	d := &Daemon{Name: name, NS: n, Bin: bin, Config: cfg, Dir: dir,
		Socket: filepath.Join(dir, "run", "shim6d.sock"), Log: filepath.Join(dir, "shim6d.log")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shim6d.toml"), []byte(cfg.toml(dir)), 0o600); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if cfg.DataPlane == "ebpf" {
		mnt := filepath.Join(dir, "bpf")
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		if !isMountPoint(mnt) {
			if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
				return nil, fmt.Errorf("lab: mount bpffs on %s: %w", mnt, err)
			}
		}
		d.mount = mnt
	}
	if err := d.Start(ctx); err != nil {
		d.unmount()
		return nil, err
	}
	return d, nil
}

// Start (re)starts the daemon with its configuration and waits until its
// API answers.
func (d *Daemon) Start(ctx context.Context) error {
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer logf.Close()
	p, err := StartProcess(d.NS, logf, d.Bin, "-config", filepath.Join(d.Dir, "shim6d.toml"))
	if err != nil {
		return fmt.Errorf("lab: start shim6d on %s: %w", d.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := api.Dial(ctx, d.Socket)
		if err == nil {
			if _, err = c.Status(ctx); err == nil {
				d.mu.Lock()
				d.proc, d.client = p, c
				d.mu.Unlock()
				return nil
			}
			c.Close()
		}
		select {
		case <-p.Done():
			return fmt.Errorf("lab: shim6d on %s exited at start (%v):\n%s", d.Name, p.Wait(), d.LogTail(20))
		case <-ctx.Done():
			p.Stop(2 * time.Second)
			return fmt.Errorf("lab: shim6d on %s does not answer on %s: %v\n%s", d.Name, d.Socket, err, d.LogTail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Client returns the API client of the running daemon (nil when stopped).
func (d *Daemon) Client() *api.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}

// Running reports whether the daemon process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// Stop stops the daemon with SIGTERM (SIGKILL after grace) and returns
// its exit error (nil for a clean exit).
func (d *Daemon) Stop(grace time.Duration) error {
	return d.signalStop(syscall.SIGTERM, grace)
}

// Kill kills the daemon with SIGKILL: nothing of it runs any more, and
// whatever it installed stays as it was.
func (d *Daemon) Kill() {
	_ = d.signalStop(syscall.SIGKILL, time.Second)
}

func (d *Daemon) signalStop(sig syscall.Signal, grace time.Duration) error {
	d.mu.Lock()
	p, c := d.proc, d.client
	d.proc, d.client = nil, nil
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if p == nil {
		return nil
	}
	if sig == syscall.SIGTERM {
		err := p.Stop(grace)
		return err
	}
	_ = p.Signal(sig)
	<-p.Done()
	return nil
}

// Close stops the daemon and removes the bpffs mount made for it.
func (d *Daemon) Close() error {
	err := d.Stop(5 * time.Second)
	d.unmount()
	return err
}

func (d *Daemon) unmount() {
	if d.mount != "" {
		_ = unix.Unmount(d.mount, unix.MNT_DETACH)
		d.mount = ""
	}
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(d.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogContains reports whether the daemon's log contains s.
func (d *Daemon) LogContains(s string) bool {
	b, _ := os.ReadFile(d.Log)
	return bytes.Contains(b, []byte(s))
}

// HBAAddrs waits until the daemon lists n addresses of its own (HBA or
// CGA) among its local locators and returns them in address order, which
// for the lab's topology is provider order.
func (d *Daemon) HBAAddrs(ctx context.Context, n int) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last []netip.Addr
	for {
		c := d.Client()
		if c == nil {
			return nil, fmt.Errorf("lab: shim6d on %s is not running", d.Name)
		}
		l, err := c.Locators(ctx)
		if err == nil {
			last = last[:0]
			for _, x := range l.Local {
				if x.Verification == "hba" || x.Verification == "cga" {
					last = append(last, x.Addr)
				}
			}
			if len(last) >= n {
				slices.SortFunc(last, func(a, b netip.Addr) int { return a.Compare(b) })
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lab: shim6d on %s has %d own addresses, want %d (%v)", d.Name, len(last), n, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ErrNoContext is returned by WaitContext when the condition was not met
// in time.
var ErrNoContext = errors.New("lab: context not in the expected state")

// WaitContext polls the daemon's context with peer (a peer ULID) until ok
// holds, ctx ends or timeout passes.
func (d *Daemon) WaitContext(ctx context.Context, peer netip.Addr, timeout time.Duration, ok func(api.Context) bool) (api.Context, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last api.Context
	var err error
	for {
		if c := d.Client(); c != nil {
			last, err = c.Context(ctx, api.ContextRef{PeerULID: peer})
			if err == nil && ok(last) {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%w: %s, context with %s: state %q reap %q locators %s > %s (%v)",
				ErrNoContext, d.Name, peer, last.State, last.REAPState, last.LocalLocator, last.PeerLocator, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Established is a WaitContext condition.
func Established(c api.Context) bool { return c.State == "established" }

// Watch subscribes to the daemon's event stream on a connection of its
// own and calls fn (from another goroutine) for every event until ctx
// ends or the daemon stops. It returns once the subscription is in place,
// so no later event is missed; the returned channel is closed when
// watching has ended.
func (d *Daemon) Watch(ctx context.Context, fn func(api.Event)) (<-chan struct{}, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "unix", d.Socket)
	if err != nil {
		return nil, fmt.Errorf("lab: watch %s: %w", d.Name, err)
	}
	req, _ := json.Marshal(api.Request{Version: api.Version, ID: 1, Method: api.MethodEventsWatch})
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(conn, 64<<10)
	var resp api.Response
	if _, err = conn.Write(append(req, '\n')); err == nil {
		var line []byte
		if line, err = r.ReadBytes('\n'); err == nil {
			err = json.Unmarshal(line, &resp)
		}
	}
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("lab: watch %s: %w", d.Name, err)
	}
	conn.SetDeadline(time.Time{})
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		defer close(done)
		defer stop()
		defer conn.Close()
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var ev api.Response
			if json.Unmarshal(line, &ev) == nil && ev.Event != nil {
				fn(*ev.Event)
			}
		}
	}()
	return done, nil
}

func isMountPoint(p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

// unmountUnder detaches every mount point below dir (bpffs mounts left by
// a lab run that crashed).
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var errs []error
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	// Deepest first.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
