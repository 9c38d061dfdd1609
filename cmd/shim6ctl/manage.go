package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/api"
)

func init() {
	addCommand(newUpdateCmd)
	addCommand(newExploreCmd)
	addCommand(newPinCmd)
	addCommand(newUnpinCmd)
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%s: %q is not an IPv6 address", what, s)
	}
	return a, nil
}

// simpleRefCmd builds a command "NAME TAG|PEER-ULID [--local ULID]".
func simpleRefCmd(use, short, long, done string, f func(*api.Client, context.Context, api.ContextRef) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " TAG|PEER-ULID",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
	}
	o := addClientFlags(cmd)
	var local string
	cmd.Flags().StringVar(&local, "local", "", "local ULID, when the context is named by its peer ULID")
	cmd.ValidArgsFunction = completeContexts(o)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return refCommand(cmd, o, args[0], local, done, f)
	}
	return cmd
}

func newUpdateCmd() *cobra.Command {
	return simpleRefCmd("update",
		"Send our current locator list to the peer now (Update, RFC 5533 §10.3)",
		`Send an Update Request with the current local locator list (and
preferences) to the peer of a context, as shim6d does by itself when an
address comes or goes. Useful after changing preferences, or to check that
the peer answers.`,
		"update sent", (*api.Client).Update)
}

func newExploreCmd() *cobra.Command {
	return simpleRefCmd("explore",
		"Start REAP exploration now (RFC 5534 §3.5)",
		`Make REAP probe every locator pair of a context now, as if the current
pair had failed, and switch to the best pair that answers. The context must
be established.`,
		"exploring", (*api.Client).Explore)
}

func newUnpinCmd() *cobra.Command {
	return simpleRefCmd("unpin",
		"Give the choice of the locator pair back to REAP",
		`Undo "shim6ctl pin": REAP chooses the locator pair again (the old
"deshim" debug command).`,
		"unpinned", (*api.Client).Unpin)
}

func newPinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin TAG|PEER-ULID LOCAL-LOCATOR PEER-LOCATOR",
		Short: "Force a context onto one locator pair (debugging)",
		Long: `Make the data plane use this locator pair for a context, whatever
REAP thinks, until "shim6ctl unpin" (the older implementations' "shim"
debug command). Both locators must be known: one of ours, one the peer
announced and that was verified.`,
		Example: `  shim6ctl pin 0x2a3b4c5d6e7f 2001:db8:1:1::10 2001:db8:2:2::20`,
		Args:    cobra.ExactArgs(3),
	}
	o := addClientFlags(cmd)
	var local string
	cmd.Flags().StringVar(&local, "local", "", "local ULID, when the context is named by its peer ULID")
	cmd.ValidArgsFunction = completeContexts(o)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := parseRef(args[0], local)
		if err != nil {
			return err
		}
		p := api.PinParams{ContextRef: ref}
		if p.LocalLocator, err = parseAddr("LOCAL-LOCATOR", args[1]); err != nil {
			return err
		}
		if p.PeerLocator, err = parseAddr("PEER-LOCATOR", args[2]); err != nil {
			return err
		}
		if err := p.Validate(); err != nil {
			return explain(err)
		}
		return o.run(cmd, func(ctx context.Context, c *api.Client) error {
			if err := c.Pin(ctx, p); err != nil {
				return err
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"context": ref, "result": "pinned", "local_locator": p.LocalLocator, "peer_locator": p.PeerLocator})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "context %s: pinned to %s > %s\n", ref, p.LocalLocator, p.PeerLocator)
			return nil
		})
	}
	return cmd
}
