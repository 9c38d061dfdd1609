package main

// shim6ctl hba gen (owner: cga helper).

import (
	"fmt"
	"net/netip"

	"github.com/goshim6/goshim6/cga"
	"github.com/spf13/cobra"
)

func newHBACommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "hba",
		Short: "Generate HBA sets (RFC 5535); verify them with `shim6ctl cga verify`",
	}
	c.AddCommand(newHBAGenCommand())
	return c
}

func newHBAGenCommand() *cobra.Command {
	var f cgaGenFlags
	var prefixes []string
	var keyFile string
	c := &cobra.Command{
		Use:   "gen --prefix P1 --prefix P2 ... --sec N [--key FILE] --out FILE",
		Short: "Generate an HBA set; write its parameters to --out and print one address per prefix, in order",
		Long: `Generate an HBA set (RFC 5535 §6) for the given /64 prefixes.

Without --key the public key field holds a random 384-bit pseudo-key (an
HBA-only set); with --key the set is bound to that RSA key and its
addresses are CGAs too (a CGA-compatible set, usable with CGA signatures).
The parameters written carry the last prefix in their subnet prefix field
and verify every address of the set.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var pfxs []netip.Prefix
			for _, s := range prefixes {
				p, err := cgaParsePrefix(s)
				if err != nil {
					return err
				}
				pfxs = append(pfxs, p)
			}
			var pub []byte
			if keyFile != "" {
				key, err := cga.LoadPrivateKey(keyFile)
				if err != nil {
					return err
				}
				if pub, err = cga.MarshalPublicKey(&key.PublicKey); err != nil {
					return err
				}
			}
			ctx, stop := cgaSignalContext(c.Context())
			defer stop()
			pr := newCGAProgress(c.ErrOrStderr(), f.progress)
			set, err := cga.GenerateHBA(ctx, pfxs, pub, cga.Options{Sec: f.sec, Workers: f.workers, Progress: pr.report})
			pr.finish()
			if err != nil {
				return cgaInterrupted(c, ctx, err)
			}
			if err := cgaWriteFile(f.out, set.Params); err != nil {
				return err
			}
			if f.json {
				return cgaJSON(c.OutOrStdout(), map[string]any{
					"addresses": set.Addrs, "prefixes": pfxs, "sec": f.sec, "params_file": f.out,
					"params_len": len(set.Params), "cga_compatible": pub != nil,
					"attempts": pr.last.Attempts, "elapsed_ms": pr.last.Elapsed.Milliseconds(),
				})
			}
			for _, a := range set.Addrs {
				fmt.Fprintln(c.OutOrStdout(), a)
			}
			return nil
		},
	}
	f.register(c)
	c.Flags().StringArrayVar(&prefixes, "prefix", nil, "an IPv6 /64 of the set (repeat, in order)")
	c.Flags().StringVar(&keyFile, "key", "", "RSA private key (PEM PKCS#1 or PKCS#8) for a CGA-compatible set")
	c.MarkFlagRequired("prefix")
	return c
}
