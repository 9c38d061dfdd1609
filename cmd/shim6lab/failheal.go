package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/internal/netns"
)

func init() {
	addCommand(newFailCmd)
	addCommand(newHealCmd)
}

func newFailCmd(g *globals) *cobra.Command {
	var method, dir string
	cmd := &cobra.Command{
		Use:   "fail LINK",
		Short: "Break a link (a-p1, p2-core, ...): silently (blackhole) or by taking it down",
		Long: `Break a link.

  --method blackhole  (default) the provider silently drops everything it would
                      forward across the link; the host sees no carrier change,
                      no route change, no ICMP error. --dir out drops only what
                      the host sends, --dir in only what it receives.
  --method down       the provider's end goes administratively down; the host
                      sees its uplink lose carrier.

A pN-core link breaks provider N's connection to everyone else.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := netns.ParseMethod(method)
			if err != nil {
				return err
			}
			d, err := netns.ParseDirection(dir)
			if err != nil {
				return err
			}
			if m == netns.LinkDown && d != netns.DirBoth {
				return fmt.Errorf("--dir applies only to --method blackhole")
			}
			if err := needRoot(); err != nil {
				return err
			}
			l, err := g.manager().Open(g.name)
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Fail(args[0], m, d); err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], describe(m, d))
				return nil
			}
			return writeJSON(cmd.OutOrStdout(), map[string]string{"link": args[0], "method": m.String(), "dir": d.String()})
		},
	}
	cmd.Flags().StringVar(&method, "method", "blackhole", "blackhole or down")
	cmd.Flags().StringVar(&dir, "dir", "both", "for blackhole: both, out (host to provider) or in")
	return cmd
}

func describe(m netns.Method, d netns.Direction) string {
	if m == netns.LinkDown {
		return "down (the host's side loses carrier)"
	}
	return "blackholed, direction " + d.String() + " (silent)"
}

func newHealCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "heal LINK|all",
		Short: "Undo any failure of a link, or of all links",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			l, err := g.manager().Open(g.name)
			if err != nil {
				return err
			}
			defer l.Close()
			names := args
			if args[0] == "all" {
				names = nil
				for _, k := range l.Links {
					names = append(names, k.Name)
				}
			}
			for _, n := range names {
				if err := l.Heal(n); err != nil {
					return err
				}
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"healed": names})
			}
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", n)
			}
			return nil
		},
	}
}
