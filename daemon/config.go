package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/goshim6/goshim6/api"
)

// DefaultConfigPath is where shim6d looks for its configuration.
const DefaultConfigPath = "/etc/shim6d/shim6d.toml"

// Config is the content of shim6d.toml. Every key, its default and its
// meaning are listed in docs/configuration.md and
// dist/shim6d.toml.example; keep the three in step (TestExampleConfig
// checks that the example parses to Default()).
type Config struct {
	// StateDir holds the generated HBA/CGA parameters and keys (0700 dir,
	// 0600 files) and the lock file.
	StateDir string `toml:"state_dir"`
	// Socket is the management API's Unix socket.
	Socket    string          `toml:"socket"`
	Locators  LocatorsConfig  `toml:"locators"`
	Security  SecurityConfig  `toml:"security"`
	REAP      REAPConfig      `toml:"reap"`
	Trigger   TriggerConfig   `toml:"trigger"`
	Peers     PeersConfig     `toml:"peers"`
	Limits    LimitsConfig    `toml:"limits"`
	DataPlane DataPlaneConfig `toml:"dataplane"`
	Log       LogConfig       `toml:"log"`
	Metrics   MetricsConfig   `toml:"metrics"`
}

// LocatorsConfig restricts which local addresses become locators.
type LocatorsConfig struct {
	// Interfaces, if not empty, lists the only interfaces whose addresses
	// are used.
	Interfaces []string `toml:"interfaces"`
	// ExcludeInterfaces are never used.
	ExcludeInterfaces []string `toml:"exclude_interfaces"`
	// Prefixes, if not empty, lists the only prefixes addresses may come
	// from.
	Prefixes []netip.Prefix `toml:"prefixes"`
	// ExcludePrefixes are never used.
	ExcludePrefixes []netip.Prefix `toml:"exclude_prefixes"`
}

// Security modes.
const (
	SecurityHBA      = "hba"
	SecurityCGA      = "cga"
	SecurityInsecure = "insecure"
)

// SecurityConfig chooses how our locators are bound to our identity
// (RFC 5535 HBA, RFC 3972 CGA) and how the peer's are verified.
type SecurityConfig struct {
	// Mode is "hba" (default), "cga" or "insecure" (labs only: locators
	// are used without verification; logged as a warning at every start).
	Mode string `toml:"mode"`
	// Sec is the CGA Sec parameter, 0 to 2 (RFC 3972 §2, RFC 4982).
	Sec int `toml:"sec"`
	// RSAKey is a PEM file with the RSA private key for CGA (and the public
	// key inside the HBA/CGA parameters). Empty: generated once under
	// StateDir and reused.
	RSAKey string `toml:"rsa_key"`
	// RSABits is the size of a generated key.
	RSABits int `toml:"rsa_bits"`
	// AddAddresses makes shim6d add the generated HBA/CGA addresses to the
	// interfaces whose prefixes they belong to.
	AddAddresses bool `toml:"add_addresses"`
}

// REAPConfig sets the failure detection timers (RFC 5534 §3).
type REAPConfig struct {
	// SendTimeout: how long outbound traffic may go unanswered before
	// exploration starts; announced to the peer as our Keepalive Timeout
	// (RFC 5534 §5.1, default 15 s; the RFC recommends 10-100 s).
	SendTimeout time.Duration `toml:"send_timeout"`
	// ActivityPoll: how often the data plane's per-context counters are
	// read.
	ActivityPoll time.Duration `toml:"activity_poll"`
	// ULPFeedback lets the upper layer's trouble reports (a TCP
	// retransmission timeout seen by the data plane) start exploration at
	// once (RFC 5534 §3.2 "upper-layer feedback"), without waiting for the
	// Send Timeout.
	ULPFeedback bool `toml:"ulp_feedback"`
	// TCPLD (default true): while REAP explores, answer each TCP
	// retransmission timeout on the context's ULID pair with an ICMPv6
	// "no route" error to the local socket, so that TCP undoes one step of
	// its RTO backoff (RFC 6069, tcpld.go) and resumes within one base RTO
	// of the repair. Independent of ulp_feedback. Read at start.
	TCPLD bool `toml:"tcp_ld"`
}

// TriggerConfig decides when traffic between two ULIDs gets a context
// (RFC 5533 §7.2 leaves the heuristic to the implementation).
type TriggerConfig struct {
	// Packets: establish after this many packets between a ULID pair. 0
	// disables automatic establishment (contexts are then created only by
	// shim6ctl or by a peer).
	Packets uint32 `toml:"packets"`
}

// PeersConfig lists peers by ULID prefix.
type PeersConfig struct {
	// Always: establish a context at the first packet to these peers.
	Always []netip.Prefix `toml:"always"`
	// Never: never initiate a context to these peers (and answer their I1
	// with nothing, as a host without Shim6 would).
	Never []netip.Prefix `toml:"never"`
}

// LimitsConfig bounds the daemon's tables.
type LimitsConfig struct {
	MaxContexts int `toml:"max_contexts"`
	// GCIdle deletes contexts that saw no traffic for this long.
	GCIdle time.Duration `toml:"gc_idle"`
}

// DataPlaneConfig controls the eBPF data plane.
type DataPlaneConfig struct {
	// Kind is "ebpf" (default: packets are rewritten in the kernel) or
	// "memory" (control plane only: contexts are negotiated and watched,
	// no packet is rewritten; for trying shim6d and for tests).
	Kind string `toml:"kind"`
	// KeepOnExit leaves the data plane (programs, maps, rules) in place
	// when shim6d stops, so established contexts keep forwarding; the next
	// start adopts it.
	KeepOnExit bool `toml:"keep_on_exit"`
	// PinDir is the bpffs directory where maps and links are pinned
	// (mounted by shim6d if bpffs is not mounted there).
	PinDir string `toml:"pin_dir"`
	// FastReroute (default true) lets the data plane move a context's
	// traffic to another verified locator pair on its own, at once: at a
	// TCP retransmission timeout to a precomputed backup pair, and when
	// the peer's payload arrives on another pair, to its reverse. REAP
	// then confirms the move or undoes it (docs/dataplane.md). It acts on
	// ULP feedback, so it needs reap.ulp_feedback too; both are read at
	// start.
	FastReroute bool `toml:"fast_reroute"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text, json
}

// MetricsConfig enables Prometheus metrics.
type MetricsConfig struct {
	// Listen is host:port for /metrics; empty (default) disables it.
	Listen string `toml:"listen"`
}

// Default returns the configuration used when no file exists.
func Default() Config {
	return Config{
		StateDir: "/var/lib/shim6d",
		Socket:   api.DefaultSocket,
		Security: SecurityConfig{Mode: SecurityHBA, Sec: 0, RSABits: 2048, AddAddresses: true},
		REAP:     REAPConfig{SendTimeout: 15 * time.Second, ActivityPoll: time.Second, ULPFeedback: true, TCPLD: true},
		Trigger:  TriggerConfig{Packets: 10},
		Limits:   LimitsConfig{MaxContexts: 65536, GCIdle: 10 * time.Minute},
		DataPlane: DataPlaneConfig{
			Kind:        "ebpf",
			PinDir:      "/sys/fs/bpf/goshim6",
			FastReroute: true,
		},
		Log: LogConfig{Level: "info", Format: "text"},
	}
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("configuration")

// LoadConfig reads and validates the file at path. A missing file is an
// error unless missingOK, in which case Default() is returned.
func LoadConfig(path string, missingOK bool) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := ParseConfig(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes TOML over cfg (normally Default()) and validates the
// result. Unknown keys are errors: a typo must not silently leave a default
// in place.
func ParseConfig(b []byte, cfg *Config) error {
	md, err := toml.Decode(string(b), cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%w: unknown key(s): %s (see docs/configuration.md)", ErrConfig, strings.Join(keys, ", "))
	}
	return cfg.Validate()
}

// Validate checks every key and reports all problems at once, one per line,
// each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "must be an absolute path (got %q)", c.StateDir)
	}
	if !filepath.IsAbs(c.Socket) {
		bad("socket", "must be an absolute path (got %q)", c.Socket)
	} else if len(c.Socket) > 107 {
		bad("socket", "path longer than 107 bytes does not fit a Unix socket address")
	}
	for _, n := range append(slices.Clone(c.Locators.Interfaces), c.Locators.ExcludeInterfaces...) {
		if n == "" || len(n) > 15 || strings.ContainsAny(n, "/ \t") {
			bad("locators.interfaces", "%q is not an interface name", n)
		}
	}
	for _, n := range c.Locators.Interfaces {
		if slices.Contains(c.Locators.ExcludeInterfaces, n) {
			bad("locators.exclude_interfaces", "%q is also in locators.interfaces", n)
		}
	}
	checkPrefixes := func(key string, ps []netip.Prefix) {
		for _, p := range ps {
			if !p.Addr().Is6() || p.Addr().Is4In6() {
				bad(key, "%s is not an IPv6 prefix", p)
			} else if p != p.Masked() {
				bad(key, "%s has host bits set (did you mean %s?)", p, p.Masked())
			}
		}
	}
	checkPrefixes("locators.prefixes", c.Locators.Prefixes)
	checkPrefixes("locators.exclude_prefixes", c.Locators.ExcludePrefixes)
	checkPrefixes("peers.always", c.Peers.Always)
	checkPrefixes("peers.never", c.Peers.Never)
	for _, a := range c.Peers.Always {
		for _, n := range c.Peers.Never {
			if a.Overlaps(n) {
				bad("peers.never", "%s overlaps peers.always %s", n, a)
			}
		}
	}
	switch c.Security.Mode {
	case SecurityHBA, SecurityCGA, SecurityInsecure:
	default:
		bad("security.mode", "must be \"hba\", \"cga\" or \"insecure\" (got %q)", c.Security.Mode)
	}
	// RFC 4982 and RFC 5535 define Sec 0-2 only (SPEC-NOTES.md).
	if c.Security.Sec < 0 || c.Security.Sec > 2 {
		bad("security.sec", "must be 0, 1 or 2 (got %d)", c.Security.Sec)
	}
	if c.Security.RSABits < 1024 || c.Security.RSABits > 4096 {
		bad("security.rsa_bits", "must be between 1024 and 4096 (got %d)", c.Security.RSABits)
	}
	if c.Security.RSAKey != "" && !filepath.IsAbs(c.Security.RSAKey) {
		bad("security.rsa_key", "must be an absolute path (got %q)", c.Security.RSAKey)
	}
	if c.REAP.SendTimeout < time.Second || c.REAP.SendTimeout > time.Hour {
		bad("reap.send_timeout", "must be between 1s and 1h (got %v)", c.REAP.SendTimeout)
	}
	if c.REAP.ActivityPoll < 50*time.Millisecond || c.REAP.ActivityPoll > c.REAP.SendTimeout/2 {
		bad("reap.activity_poll", "must be between 50ms and half of reap.send_timeout (got %v)", c.REAP.ActivityPoll)
	}
	if c.Limits.MaxContexts < 1 || c.Limits.MaxContexts > 1<<22 {
		bad("limits.max_contexts", "must be between 1 and %d (got %d)", 1<<22, c.Limits.MaxContexts)
	}
	if c.Limits.GCIdle != 0 && c.Limits.GCIdle < time.Minute {
		bad("limits.gc_idle", "must be 0 (never) or at least 1m (got %v)", c.Limits.GCIdle)
	}
	if c.DataPlane.Kind != "ebpf" && c.DataPlane.Kind != "memory" {
		bad("dataplane.kind", "must be \"ebpf\" or \"memory\" (got %q)", c.DataPlane.Kind)
	}
	if !filepath.IsAbs(c.DataPlane.PinDir) {
		bad("dataplane.pin_dir", "must be an absolute path (got %q)", c.DataPlane.PinDir)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be \"text\" or \"json\" (got %q)", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Metrics.Listen); err != nil || port == "" {
			bad("metrics.listen", "must be host:port, e.g. \"[::1]:9586\" (got %q)", c.Metrics.Listen)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%w:\n  %s", ErrConfig, strings.Join(msgs, "\n  "))
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("must be debug, info, warn or error (got %q)", s)
}

// notReloadable reports the keys that differ between old and c and cannot
// change without a restart.
func (c *Config) notReloadable(old Config) []string {
	var keys []string
	if c.StateDir != old.StateDir {
		keys = append(keys, "state_dir")
	}
	if c.Socket != old.Socket {
		keys = append(keys, "socket")
	}
	if c.Security != old.Security {
		keys = append(keys, "security")
	}
	if c.DataPlane.PinDir != old.DataPlane.PinDir || c.DataPlane.Kind != old.DataPlane.Kind {
		keys = append(keys, "dataplane.kind/pin_dir")
	}
	if c.Metrics != old.Metrics {
		keys = append(keys, "metrics.listen")
	}
	if c.Limits != old.Limits {
		keys = append(keys, "limits")
	}
	if c.REAP.SendTimeout != old.REAP.SendTimeout || c.REAP.ActivityPoll != old.REAP.ActivityPoll {
		keys = append(keys, "reap.send_timeout/activity_poll")
	}
	if c.REAP.TCPLD != old.REAP.TCPLD {
		keys = append(keys, "reap.tcp_ld")
	}
	if c.DataPlane.KeepOnExit != old.DataPlane.KeepOnExit {
		keys = append(keys, "dataplane.keep_on_exit")
	}
	if c.FastReroute() != old.FastReroute() {
		keys = append(keys, "dataplane.fast_reroute (with reap.ulp_feedback)")
	}
	if c.Log.Format != old.Log.Format {
		keys = append(keys, "log.format")
	}
	return keys
}

// FastReroute reports whether the data plane may move traffic on its own
// (dataplane.fast_reroute, which acts on ULP feedback: reap.ulp_feedback).
func (c *Config) FastReroute() bool { return c.DataPlane.FastReroute && c.REAP.ULPFeedback }

// PeerPolicy says what to do with traffic to a peer ULID.
type PeerPolicy int

// Peer policies.
const (
	PeerDefault PeerPolicy = iota // establish after trigger.packets
	PeerAlways                    // establish at once
	PeerNever                     // never initiate
)

// PolicyFor classifies a peer ULID by peers.always / peers.never; the most
// specific matching prefix wins (Validate forbids overlaps anyway).
func (c *Config) PolicyFor(peer netip.Addr) PeerPolicy {
	for _, p := range c.Peers.Never {
		if p.Contains(peer) {
			return PeerNever
		}
	}
	for _, p := range c.Peers.Always {
		if p.Contains(peer) {
			return PeerAlways
		}
	}
	return PeerDefault
}

// LocatorAllowed applies the [locators] filters to one local address.
func (c *Config) LocatorAllowed(iface string, a netip.Addr) bool {
	if len(c.Locators.Interfaces) > 0 && !slices.Contains(c.Locators.Interfaces, iface) {
		return false
	}
	if slices.Contains(c.Locators.ExcludeInterfaces, iface) {
		return false
	}
	for _, p := range c.Locators.ExcludePrefixes {
		if p.Contains(a) {
			return false
		}
	}
	if len(c.Locators.Prefixes) == 0 {
		return true
	}
	for _, p := range c.Locators.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c Config) ptr() *Config { return &c }
