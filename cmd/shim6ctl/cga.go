package main

// shim6ctl cga gen | cga verify (owner: cga helper).

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/goshim6/goshim6/cga"
	"github.com/spf13/cobra"
)

func init() {
	addCommand(newCGACommand)
	addCommand(newHBACommand)
}

func newCGACommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "cga",
		Short: "Generate and verify CGAs (RFC 3972) and HBA sets (RFC 5535)",
	}
	c.AddCommand(newCGAGenCommand(), newCGAVerifyCommand())
	return c
}

// cgaGenFlags are shared by cga gen and hba gen.
type cgaGenFlags struct {
	sec      int
	out      string
	workers  int
	progress string
	json     bool
}

func (f *cgaGenFlags) register(c *cobra.Command) {
	c.Flags().IntVar(&f.sec, "sec", 0, "security parameter Sec: 0, 1 or 2 (RFC 4982); generation costs about 2^(16*Sec) hashes")
	c.Flags().StringVar(&f.out, "out", "", "file to write the CGA Parameters data structure to (raw binary)")
	c.Flags().IntVar(&f.workers, "workers", 0, "goroutines for the Hash2 search (0: all cores)")
	c.Flags().StringVar(&f.progress, "progress", "auto", "progress display on stderr: auto (when stderr is a terminal), always, never")
	c.Flags().BoolVar(&f.json, "json", false, "print the result as JSON")
	c.MarkFlagRequired("out")
}

func newCGAGenCommand() *cobra.Command {
	var f cgaGenFlags
	var prefix, keyFile, keyOut string
	var rsaBits int
	c := &cobra.Command{
		Use:   "gen --prefix P --sec N (--key FILE | --rsa-bits BITS) --out FILE [--key-out FILE]",
		Short: "Generate a CGA; write its parameters to --out and print the address",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			pfx, err := cgaParsePrefix(prefix)
			if err != nil {
				return err
			}
			if keyOut != "" && rsaBits == 0 {
				return errors.New("--key-out goes with --rsa-bits")
			}
			if keyOut != "" {
				if _, err := os.Lstat(keyOut); err == nil {
					return fmt.Errorf("--key-out %s: file exists, refusing to overwrite a key", keyOut)
				}
			}
			var key *rsa.PrivateKey
			if keyFile != "" {
				key, err = cga.LoadPrivateKey(keyFile)
			} else {
				key, err = cga.GenerateKey(nil, rsaBits)
			}
			if err != nil {
				return err
			}
			pub, err := cga.MarshalPublicKey(&key.PublicKey)
			if err != nil {
				return err
			}
			ctx, stop := cgaSignalContext(c.Context())
			defer stop()
			pr := newCGAProgress(c.ErrOrStderr(), f.progress)
			addr, params, err := cga.Generate(ctx, pfx, pub, cga.Options{Sec: f.sec, Workers: f.workers, Progress: pr.report})
			pr.finish()
			if err != nil {
				return cgaInterrupted(c, ctx, err)
			}
			if keyOut != "" {
				if err := cga.SavePrivateKey(keyOut, key); err != nil {
					return err
				}
			} else if rsaBits != 0 {
				fmt.Fprintln(c.ErrOrStderr(), "shim6ctl: warning: the generated RSA key is not saved (no --key-out); it cannot sign for this CGA")
			}
			if err := cgaWriteFile(f.out, params); err != nil {
				return err
			}
			if f.json {
				return cgaJSON(c.OutOrStdout(), map[string]any{
					"address": addr, "prefix": pfx, "sec": f.sec, "params_file": f.out,
					"params_len": len(params), "rsa_bits": key.N.BitLen(), "key_file": cgaFirstNonEmpty(keyFile, keyOut),
					"attempts": pr.last.Attempts, "elapsed_ms": pr.last.Elapsed.Milliseconds(),
				})
			}
			fmt.Fprintln(c.OutOrStdout(), addr)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&prefix, "prefix", "", "the subnet prefix, an IPv6 /64 (2001:db8:1:2::/64 or 2001:db8:1:2::)")
	c.Flags().StringVar(&keyFile, "key", "", "RSA private key, PEM (PKCS#1 or PKCS#8)")
	c.Flags().IntVar(&rsaBits, "rsa-bits", 0, "generate a new RSA key of this size (>= 1024)")
	c.Flags().StringVar(&keyOut, "key-out", "", "with --rsa-bits: write the new key here (PEM PKCS#8, mode 0600)")
	c.MarkFlagRequired("prefix")
	c.MarkFlagsMutuallyExclusive("key", "rsa-bits")
	c.MarkFlagsOneRequired("key", "rsa-bits")
	return c
}

// cgaVerdict is one address's result in `cga verify --json`.
type cgaVerdict struct {
	Address string `json:"address"`
	OK      bool   `json:"ok"`
	// Method is "hba" when the address is a member of the HBA set of the
	// parameters (RFC 5535 §7.2), "cga" when the parameters have no
	// multi-prefix extension and it is their CGA (RFC 3972 §5).
	Method string `json:"method,omitempty"`
	// Step is the RFC 3972 §5 step that failed (0: not a numbered step).
	Step  int    `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
}

func newCGAVerifyCommand() *cobra.Command {
	var paramsFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify --params FILE ADDR...",
		Short: "Verify addresses against CGA parameters (a CGA or an HBA set); exit 0 only if all verify",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			raw, err := os.ReadFile(paramsFile)
			if err != nil {
				return err
			}
			v, err := cga.NewVerifier(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", paramsFile, err)
			}
			var res []cgaVerdict
			failed := 0
			for _, s := range args {
				r := cgaVerdict{Address: s}
				addr, perr := netip.ParseAddr(s)
				switch {
				case perr != nil:
					r.Error = "not an IP address: " + perr.Error()
				default:
					err := v.Verify(addr)
					var ve *cga.VerifyError
					switch {
					case err == nil:
						r.OK, r.Method = true, "cga"
						if v.IsHBA() && v.VerifyHBA(addr) == nil {
							r.Method = "hba"
						}
					case errors.As(err, &ve):
						r.Step, r.Error = ve.Step, ve.Err.Error()
					default:
						r.Error = err.Error()
					}
				}
				if !r.OK {
					failed++
				}
				res = append(res, r)
			}
			if asJSON {
				out := map[string]any{"params_file": paramsFile, "kind": cgaKind(v), "results": res}
				if err := cgaJSON(c.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				for _, r := range res {
					switch {
					case r.OK && r.Method == "cga":
						fmt.Fprintf(c.OutOrStdout(), "%s ok (CGA, RFC 3972 §5)\n", r.Address)
					case r.OK:
						fmt.Fprintf(c.OutOrStdout(), "%s ok (HBA set member, RFC 5535 §7.2)\n", r.Address)
					case r.Step != 0:
						fmt.Fprintf(c.OutOrStdout(), "%s FAIL at RFC 3972 §5 step %d: %s\n", r.Address, r.Step, strings.TrimPrefix(r.Error, "cga: "))
					default:
						fmt.Fprintf(c.OutOrStdout(), "%s FAIL: %s\n", r.Address, strings.TrimPrefix(r.Error, "cga: "))
					}
				}
			}
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	c.Flags().StringVar(&paramsFile, "params", "", "CGA Parameters data structure (raw binary, as written by gen)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the verdicts as JSON")
	c.MarkFlagRequired("params")
	return c
}

// cgaKind describes parameters: "cga", "hba" (pseudo-key) or "hba+cga".
func cgaKind(v *cga.Verifier) string {
	if !v.IsHBA() {
		return "cga"
	}
	if _, err := cga.ParsePublicKey(v.Params().PublicKey); err == nil {
		return "hba+cga"
	}
	return "hba"
}

// cgaParsePrefix accepts an IPv6 /64 written as a prefix or as an address.
func cgaParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() || a.Is4In6() {
			return netip.Prefix{}, fmt.Errorf("--prefix %q: not an IPv6 /64", s)
		}
		return netip.PrefixFrom(a, 64).Masked(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
		return netip.Prefix{}, fmt.Errorf("--prefix %q: not an IPv6 /64 (CGAs and HBAs use a 64-bit subnet prefix)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("--prefix %q: host bits set (did you mean %v?)", s, p.Masked())
	}
	return p, nil
}

// cgaWriteFile writes b to path through a temporary file and a rename,
// mode 0644 (parameters are public).
func cgaWriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func cgaJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// cgaInterrupted turns a generation stopped by Ctrl-C into exit status 130
// with one line on stderr; other errors pass through.
func cgaInterrupted(c *cobra.Command, ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(c.ErrOrStderr(), "shim6ctl: interrupted; nothing written")
		return exitError{130}
	}
	return err
}

func cgaFirstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
