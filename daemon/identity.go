package daemon

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/goshim6/goshim6/cga"
)

// Files of the state directory.
const (
	IdentityFile = "identity.json"
	RSAKeyFile   = "rsa.key"
)

// Verification methods (RFC 5533 §5.15.2, SPEC-NOTES.md: 1 = HBA, 2 = CGA).
const (
	MethodNone uint8 = 0
	MethodHBA  uint8 = 1
	MethodCGA  uint8 = 2
)

// Identity is the host's Shim6 identity: one CGA Parameter Data Structure
// (an HBA set over the host's /64 prefixes; CGA-compatible, with the RSA
// public key, in cga mode) and, in cga mode, the private key that signs
// locator lists. It is generated on first start and reused, so that the
// host keeps its HBA/CGA addresses across restarts.
type Identity struct {
	Mode string
	Sec  int
	// PDS is the encoded CGA Parameters data structure.
	PDS []byte
	// Prefixes are the /64s of the HBA set, in set order; Addrs the
	// matching HBA addresses.
	Prefixes []netip.Prefix
	Addrs    []netip.Addr
	// Key signs locator lists (cga mode only).
	Key     *rsa.PrivateKey
	Created time.Time
}

// identityFile is the JSON form of Identity in the state directory. The
// private key is in its own PEM file.
type identityFile struct {
	Version  int            `json:"version"`
	Mode     string         `json:"mode"`
	Sec      int            `json:"sec"`
	Created  time.Time      `json:"created"`
	PDS      []byte         `json:"pds"`
	Prefixes []netip.Prefix `json:"prefixes"`
	Addrs    []netip.Addr   `json:"addresses"`
}

// MethodFor tells how peers verify a local locator: HBA for a member of the
// set, CGA (signed list) for anything else in cga mode, none otherwise.
func (id *Identity) MethodFor(a netip.Addr) uint8 {
	if id == nil {
		return MethodNone
	}
	if slices.Contains(id.Addrs, a) {
		return MethodHBA
	}
	if id.Key != nil {
		return MethodCGA
	}
	return MethodNone
}

// Missing returns the prefixes of the host that the HBA set does not
// cover: their addresses can only be offered with a CGA signature (cga
// mode), or not at all (hba mode).
func (id *Identity) Missing(prefixes []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range prefixes {
		if !slices.Contains(id.Prefixes, p) {
			out = append(out, p)
		}
	}
	return out
}

// LoadOrCreateIdentity returns the identity stored in the state directory,
// or generates one for prefixes (the host's /64s) and stores it. An
// identity stored under another security mode or Sec is an error: changing
// either changes the host's addresses, which must be a deliberate act
// (remove identity.json).
func LoadOrCreateIdentity(ctx context.Context, sd *StateDir, sec SecurityConfig, prefixes []netip.Prefix, log *slog.Logger) (*Identity, bool, error) {
	if sec.Mode == SecurityInsecure {
		// Insecure mode still uses an HBA set when it can, so that a
		// peer in a secure mode could verify us; it just does not
		// verify others. Fall through with hba parameters.
		sec.Mode = SecurityHBA
	}
	var key *rsa.PrivateKey
	if sec.Mode == SecurityCGA {
		var err error
		if key, err = loadOrCreateKey(sd, sec, log); err != nil {
			return nil, false, err
		}
	}
	if sd.Exists(IdentityFile) {
		id, err := loadIdentity(sd)
		if err != nil {
			return nil, false, err
		}
		if id.Mode != sec.Mode || id.Sec != sec.Sec {
			return nil, false, fmt.Errorf("%s/%s was made for security.mode=%q sec=%d, the configuration says %q sec=%d; "+
				"changing them changes this host's addresses: remove that file to generate a new identity",
				sd.Path, IdentityFile, id.Mode, id.Sec, sec.Mode, sec.Sec)
		}
		id.Key = key
		if key != nil {
			if err := checkKeyMatches(id, key); err != nil {
				return nil, false, err
			}
		}
		return id, false, nil
	}
	if len(prefixes) == 0 {
		return nil, false, errors.New("no global IPv6 prefix to generate an HBA set for: give the host a global address (or check [locators]) and start again")
	}
	var pub []byte
	if key != nil {
		var err error
		if pub, err = cga.MarshalPublicKey(&key.PublicKey); err != nil {
			return nil, false, err
		}
	}
	log.Info("generating the HBA set (first start)", "prefixes", prefixes, "sec", sec.Sec, "cga_compatible", key != nil)
	start := time.Now()
	set, err := cga.GenerateHBA(ctx, prefixes, pub, cga.Options{Sec: sec.Sec})
	if err != nil {
		return nil, false, fmt.Errorf("generate HBA set: %w", err)
	}
	id := &Identity{Mode: sec.Mode, Sec: sec.Sec, PDS: set.Params, Prefixes: slices.Clone(prefixes), Addrs: set.Addrs, Key: key, Created: time.Now().UTC()}
	b, err := json.MarshalIndent(identityFile{Version: 1, Mode: id.Mode, Sec: id.Sec, Created: id.Created, PDS: id.PDS, Prefixes: id.Prefixes, Addrs: id.Addrs}, "", "  ")
	if err != nil {
		return nil, false, err
	}
	if err := sd.WriteFile(IdentityFile, append(b, '\n')); err != nil {
		return nil, false, fmt.Errorf("save identity: %w", err)
	}
	log.Info("HBA set generated and saved", "file", sd.Path+"/"+IdentityFile, "addresses", id.Addrs, "took", time.Since(start).Round(time.Millisecond))
	return id, true, nil
}

func loadIdentity(sd *StateDir) (*Identity, error) {
	b, err := sd.ReadFile(IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	var f identityFile
	if err := decodeStrictJSON(b, &f); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", sd.Path, IdentityFile, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s/%s: version %d not supported", sd.Path, IdentityFile, f.Version)
	}
	v, err := cga.NewVerifier(f.PDS)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: parameters: %w", sd.Path, IdentityFile, err)
	}
	// Recompute the addresses from the parameters rather than trusting
	// the file: a hand-edited address must not become a locator that no
	// peer can verify.
	addrs := make([]netip.Addr, len(f.Prefixes))
	for i, p := range f.Prefixes {
		a, err := v.Address(p, f.Sec)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: prefix %s: %w", sd.Path, IdentityFile, p, err)
		}
		if err := v.VerifyHBA(a); err != nil {
			return nil, fmt.Errorf("%s/%s: address %s does not verify: %w", sd.Path, IdentityFile, a, err)
		}
		addrs[i] = a
	}
	return &Identity{Mode: f.Mode, Sec: f.Sec, PDS: f.PDS, Prefixes: f.Prefixes, Addrs: addrs, Created: f.Created}, nil
}

func checkKeyMatches(id *Identity, key *rsa.PrivateKey) error {
	p, err := cga.Parse(id.PDS)
	if err != nil {
		return err
	}
	pub, err := cga.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if !slices.Equal(p.PublicKey, pub) {
		return errors.New("the RSA key does not match the public key of identity.json: restore the old key, or remove identity.json to generate a new identity (new addresses)")
	}
	return nil
}

func loadOrCreateKey(sd *StateDir, sec SecurityConfig, log *slog.Logger) (*rsa.PrivateKey, error) {
	if sec.RSAKey != "" {
		if _, err := readPrivate(sec.RSAKey); err != nil {
			return nil, fmt.Errorf("security.rsa_key: %w", err)
		}
		k, err := cga.LoadPrivateKey(sec.RSAKey)
		if err != nil {
			return nil, fmt.Errorf("security.rsa_key: %w", err)
		}
		return k, nil
	}
	if sd.Exists(RSAKeyFile) {
		b, err := sd.ReadFile(RSAKeyFile)
		if err != nil {
			return nil, err
		}
		return cga.ParsePrivateKeyPEM(b)
	}
	log.Info("generating an RSA key (first start)", "bits", sec.RSABits)
	k, err := cga.GenerateKey(nil, sec.RSABits)
	if err != nil {
		return nil, err
	}
	b, err := cga.MarshalPrivateKeyPEM(k)
	if err != nil {
		return nil, err
	}
	if err := sd.WriteFile(RSAKeyFile, b); err != nil {
		return nil, err
	}
	return k, nil
}
