// Package lab runs the goshim6 lab: the standard multihomed topology of
// package internal/netns as a named lab that persists between commands
// (cmd/shim6lab up, fail, heal, status, down), plus the pieces a demo or a
// benchmark is made of: content-verified TCP traffic between two hosts
// (stream.go) and a timeline of what happened (timeline.go).
//
// A lab named NAME lives in namespaces "s6lab-NAME-a", "s6lab-NAME-p1",
// "s6lab-NAME-core" (for the default lab, whose name is empty:
// "s6lab-a", ...), and in a state file under StateDir. Down removes
// every namespace that matches the lab's name pattern, with or without a
// state file, killing the processes inside first: it cleans up after a
// crash.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
)

// DefaultStateDir holds one JSON file per lab.
const DefaultStateDir = "/run/goshim6-lab"

// NamePrefix starts every lab namespace name.
const NamePrefix = "s6lab"

// Sentinel errors.
var (
	ErrExists   = errors.New("lab: already up")
	ErrNotFound = errors.New("lab: not up")
	ErrBadName  = errors.New("lab: invalid lab name")
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,31}$`)

// CheckName validates a lab name ("" is the default lab).
func CheckName(name string) error {
	if name == "" || nameRE.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%w: %q (lower-case letters, digits and _, at most 32)", ErrBadName, name)
}

// Prefix returns the namespace prefix of the named lab.
func Prefix(name string) string {
	if name == "" {
		return NamePrefix
	}
	return NamePrefix + "-" + name
}

// nodeRE matches the namespace names of the lab's nodes and nothing else
// (the default lab's pattern does not match other labs' namespaces).
func nodeRE(name string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(Prefix(name)) + `-([a-p]|p[0-9]+|core)$`)
}

// Config is what `shim6lab up` accepts.
type Config struct {
	Hosts           int           `json:"hosts"`
	Providers       int           `json:"providers"`
	Delay           time.Duration `json:"delay,omitempty"`
	CoreDelay       time.Duration `json:"core_delay,omitempty"`
	NoIngressFilter bool          `json:"no_ingress_filter,omitempty"`
}

// state is the persisted description of a lab.
type state struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Config  Config    `json:"config"`
	Created time.Time `json:"created"`
}

// Manager creates, opens and removes labs.
type Manager struct {
	// StateDir overrides DefaultStateDir (tests use a temporary one).
	StateDir string
	// RelayCommand, when set, returns the command that runs the delay
	// relays of a lab in the background (cmd/shim6lab: itself with the
	// hidden "relay" subcommand), so that delayed links keep working after
	// Up returns. Up starts it inside the lab's core namespace (Down stops
	// it with everything else) and waits until it writes "ready" to file
	// descriptor 3. When nil, the relays run inside the calling process
	// until the Lab is closed.
	RelayCommand func(name string) *exec.Cmd
}

func (m Manager) dir() string {
	if m.StateDir != "" {
		return m.StateDir
	}
	return DefaultStateDir
}

func (m Manager) statePath(name string) string {
	if name == "" {
		name = "default"
	} else {
		name = "lab-" + name
	}
	return filepath.Join(m.dir(), name+".json")
}

// lock serialises lab changes between processes.
func (m Manager) lock() (func(), error) {
	if err := os.MkdirAll(m.dir(), 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(m.dir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

func netnsConfig(name string, c Config) netns.Config {
	return netns.Config{
		Prefix:          Prefix(name),
		Hosts:           c.Hosts,
		Providers:       c.Providers,
		Delay:           c.Delay,
		CoreDelay:       c.CoreDelay,
		NoIngressFilter: c.NoIngressFilter,
	}
}

// Lab is an open lab.
type Lab struct {
	Name    string
	Config  Config
	Created time.Time
	*netns.Topology
}

// Up builds the named lab. It fails with ErrExists when the lab (or any of
// its namespaces, e.g. left over by a crash) exists: run Down first.
func (m Manager) Up(name string, cfg Config) (*Lab, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if cfg.Hosts == 0 {
		cfg.Hosts = 2
	}
	if cfg.Providers == 0 {
		cfg.Providers = 2
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(m.statePath(name)); err == nil {
		return nil, fmt.Errorf("%w: %s (state %s)", ErrExists, display(name), m.statePath(name))
	}
	if left, err := m.namespaces(name); err != nil {
		return nil, err
	} else if len(left) > 0 {
		return nil, fmt.Errorf("%w: %s has leftover namespaces %v; run down first", ErrExists, display(name), left)
	}
	ncfg := netnsConfig(name, cfg)
	ncfg.ExternalRelays = m.RelayCommand != nil
	topo, err := netns.Build(ncfg)
	if err != nil {
		return nil, err
	}
	st := state{Version: 1, Name: name, Config: cfg, Created: time.Now().UTC().Truncate(time.Second)}
	if err := writeJSON(m.statePath(name), st); err != nil {
		return nil, errors.Join(err, topo.Destroy())
	}
	if ncfg.ExternalRelays && topo.Relayed() {
		if err := m.startRelay(name, topo.Core); err != nil {
			os.Remove(m.statePath(name))
			return nil, errors.Join(err, topo.Destroy())
		}
	}
	return &Lab{Name: name, Config: cfg, Created: st.Created, Topology: topo}, nil
}

// Open attaches to the named lab built by an earlier Up.
func (m Manager) Open(name string) (*Lab, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(m.statePath(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s (run shim6lab up)", ErrNotFound, display(name))
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: state %s: %w", m.statePath(name), err)
	}
	topo, err := netns.Attach(netnsConfig(name, st.Config))
	if err != nil {
		return nil, fmt.Errorf("lab: %s is broken (%w); run down and up again", display(name), err)
	}
	return &Lab{Name: name, Config: st.Config, Created: st.Created, Topology: topo}, nil
}

// Down removes the named lab: every namespace of it (whether or not a
// state file exists), the processes running inside them, and the state
// file. It returns the namespaces removed; a lab that is not up is not an
// error.
func (m Manager) Down(name string) ([]string, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	names, err := m.namespaces(name)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, removeNS(n))
	}
	// Daemons' directories of demo/bench runs: bpffs mounts first.
	if err := unmountUnder(m.RunDir(name)); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(m.RunDir(name)); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []string{m.statePath(name), m.relayLog(name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return names, errors.Join(errs...)
}

// Labs lists the labs that have a state file or namespaces.
func (m Manager) Labs() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	ents, _ := os.ReadDir(m.dir())
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == "default.json":
			add("")
		case len(n) > 9 && n[:4] == "lab-" && filepath.Ext(n) == ".json":
			add(n[4 : len(n)-5])
		}
	}
	all, err := netns.List(NamePrefix)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile("^" + NamePrefix + `(?:-([a-z0-9][a-z0-9_]*))?-([a-p]|p[0-9]+|core)$`)
	for _, n := range all {
		if m := re.FindStringSubmatch(n); m != nil {
			add(m[1])
		}
	}
	return out, nil
}

func (m Manager) namespaces(name string) ([]string, error) {
	all, err := netns.List(Prefix(name) + "-")
	if err != nil {
		return nil, err
	}
	re := nodeRE(name)
	var out []string
	for _, n := range all {
		if re.MatchString(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// removeNS kills what runs in a namespace (TERM, then KILL after a grace
// period) and removes it.
func removeNS(name string) error {
	if n, err := netns.Open(name); err == nil {
		if pids, _ := n.PIDs(); len(pids) > 0 {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGTERM)
			}
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				if left, _ := n.PIDs(); len(left) == 0 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if left, _ := n.PIDs(); len(left) > 0 {
				for _, p := range left {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		n.Close()
	}
	return netns.Remove(name)
}

func (m Manager) relayLog(name string) string {
	return strings.TrimSuffix(m.statePath(name), ".json") + ".relay.log"
}

// RunDir is where runs on the named lab (demo, bench) keep the daemons'
// configuration, state, sockets, logs and bpffs mounts; Down removes it.
func (m Manager) RunDir(name string) string {
	return strings.TrimSuffix(m.statePath(name), ".json") + ".d"
}

// RelayReadyFd is the descriptor on which a relay process reports
// readiness by writing "ready".
const RelayReadyFd = 3

func (m Manager) startRelay(name string, core *netns.NS) error {
	cmd := m.RelayCommand(name)
	logPath := m.relayLog(name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: relay log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = core.Start(cmd)
	w.Close()
	if err != nil {
		return fmt.Errorf("lab: start relay: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		b := make([]byte, 5)
		n, _ := io.ReadFull(r, b)
		ready <- string(b[:n]) == "ready"
	}()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		cmd.Process.Kill()
		return fmt.Errorf("lab: relay did not start (see %s): %v", logPath, <-exited)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("lab: relay not ready after 10s (see %s)", logPath)
	}
}

func display(name string) string {
	if name == "" {
		return "the default lab"
	}
	return "lab " + name
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// NodeStatus is one namespace of a lab.
type NodeStatus struct {
	Name      string   `json:"name"`      // "a", "p1", "core"
	Namespace string   `json:"namespace"` // "s6lab-a"
	Locators  []string `json:"locators,omitempty"`
	Processes []string `json:"processes,omitempty"` // "PID comm"
}

// LinkStatus is one link of a lab.
type LinkStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // "ok", "down", "no-carrier", "blackhole-out", ...
}

// Status is what `shim6lab status` shows.
type Status struct {
	Lab     string       `json:"lab"`
	Created time.Time    `json:"created"`
	Config  Config       `json:"config"`
	Nodes   []NodeStatus `json:"nodes"`
	Links   []LinkStatus `json:"links"`
}

// Status reads the lab's state from the kernel.
func (l *Lab) Status() (Status, error) {
	s := Status{Lab: l.Name, Created: l.Created, Config: l.Config}
	node := func(name string, n *netns.NS, locs []string) {
		ns := NodeStatus{Name: name, Namespace: n.Name(), Locators: locs}
		if pids, err := n.PIDs(); err == nil {
			for _, p := range pids {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
				ns.Processes = append(ns.Processes, fmt.Sprintf("%d %s", p, trimNL(comm)))
			}
		}
		s.Nodes = append(s.Nodes, ns)
	}
	for _, h := range l.Hosts {
		var locs []string
		for _, a := range h.Locators() {
			locs = append(locs, a.String())
		}
		node(h.Name, h.NS, locs)
	}
	for _, p := range l.Providers {
		node(p.Name, p.NS, nil)
	}
	node("core", l.Core, nil)
	links, err := l.Topology.Status()
	if err != nil {
		return s, err
	}
	for _, ls := range links {
		s.Links = append(s.Links, LinkStatus{Name: ls.Name, State: ls.String()})
	}
	return s, nil
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
