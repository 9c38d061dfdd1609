package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/api"
)

func init() {
	addCommand(newContextsCmd)
	addCommand(newContextCmd)
}

func newContextsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "contexts",
		Aliases: []string{"ctx", "ls"},
		Short:   "List the Shim6 contexts in a table",
		Long: `List every context, one per line:

  TAG         our context tag (give it to the other commands), then the peer's
  LOCAL ULID  the addresses the applications use
  PEER ULID
  LOCATORS    the locator pair on the wire now; "= ULIDs" when no rewriting
              happens; "[pinned]" when fixed with shim6ctl pin
  STATE       handshake state (RFC 5533 §6.2)
  REAP        operational, exploring or inbound-ok (RFC 5534 §3.5)
  AGE         since the context was created
  TX RX       packets/bytes the data plane counted
  LAST SWITCH when the locator pair last changed, and why`,
		Example: `  shim6ctl contexts
  shim6ctl contexts -o json | jq '.[] | select(.state=="established")'`,
		Args: cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.run(cmd, func(ctx context.Context, c *api.Client) error {
			cs, err := c.Contexts(ctx)
			if err != nil {
				return err
			}
			if o.json() {
				if cs == nil {
					cs = []api.Context{}
				}
				return writeJSON(cmd.OutOrStdout(), cs)
			}
			st, err := c.Status(ctx)
			now := st.Now
			if err != nil || now.IsZero() {
				now = time.Now()
			}
			writeContextsTable(cmd.OutOrStdout(), now, cs)
			return nil
		})
	}
	return cmd
}

func writeContextsTable(w io.Writer, now time.Time, cs []api.Context) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "no contexts")
		return
	}
	slices.SortFunc(cs, func(a, b api.Context) int {
		if c := a.PeerULID.Compare(b.PeerULID); c != 0 {
			return c
		}
		if c := a.LocalULID.Compare(b.LocalULID); c != 0 {
			return c
		}
		return int(a.FII) - int(b.FII)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tPEER TAG\tLOCAL ULID\tPEER ULID\tLOCATORS\tSTATE\tREAP\tAGE\tTX\tRX\tLAST SWITCH")
	for _, x := range cs {
		loc := pair(x)
		if x.Pinned {
			loc += " [pinned]"
		}
		peerTag := "-"
		if x.PeerTag != 0 {
			peerTag = api.FormatTag(x.PeerTag)
		}
		sw := ago(now, x.LastSwitch)
		if !x.LastSwitch.IsZero() {
			sw += " ago"
			if x.LastSwitchReason != "" {
				sw += " (" + x.LastSwitchReason + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			api.FormatTag(x.LocalTag), peerTag, x.LocalULID, x.PeerULID, loc,
			x.State, orDash(x.REAPState), ago(now, x.Created),
			traffic(x.Traffic.TxPackets, x.Traffic.TxBytes), traffic(x.Traffic.RxPackets, x.Traffic.RxBytes), sw)
	}
	tw.Flush()
}

func traffic(p, b uint64) string {
	if p == 0 {
		return "-"
	}
	return humanCount(p) + "/" + humanBytes(b)
}

func newContextCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Show, add or delete one context",
		Long: `Work on one context. A context is named by its tag (as shown by
"shim6ctl contexts", decimal or 0x hex) or by its peer ULID, with --local to
choose among several local ULIDs talking to that peer.`,
	}
	o := addClientFlags(cmd)
	var local string
	refArgs := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&local, "local", "", "local ULID, when the context is named by its peer ULID")
		cmd.ValidArgsFunction = completeContexts(o)
	}

	show := &cobra.Command{
		Use:   "show TAG|PEER-ULID",
		Short: "Show a context with its locators and their verification state",
		Example: `  shim6ctl context show 0x2a3b4c5d6e7f
  shim6ctl context show 2001:db8:2::20 --local 2001:db8:1::10`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args[0], local)
			if err != nil {
				return err
			}
			return o.run(cmd, func(ctx context.Context, c *api.Client) error {
				x, err := c.Context(ctx, ref)
				if err != nil {
					return err
				}
				if o.json() {
					return writeJSON(cmd.OutOrStdout(), x)
				}
				now := time.Now()
				if st, err := c.Status(ctx); err == nil && !st.Now.IsZero() {
					now = st.Now
				}
				writeContext(cmd.OutOrStdout(), now, x)
				return nil
			})
		},
	}
	refArgs(show)

	add := &cobra.Command{
		Use:   "add PEER-ULID [LOCAL-ULID]",
		Short: "Start the Shim6 handshake with a peer now",
		Long: `Create a context for a ULID pair and start the four-way handshake
(I1, R1, I2, R2), as the older implementations' "context" command did.
Without LOCAL-ULID shim6d uses the source address the kernel would choose.
The command returns once the handshake has started; follow it with
"shim6ctl watch" or "shim6ctl contexts".`,
		Example: `  shim6ctl context add 2001:db8:2::20
  shim6ctl context add 2001:db8:2::20 2001:db8:1::10`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.CreateParams
			var err error
			if p.PeerULID, err = parseAddr("PEER-ULID", args[0]); err != nil {
				return err
			}
			if len(args) == 2 {
				if p.LocalULID, err = parseAddr("LOCAL-ULID", args[1]); err != nil {
					return err
				}
			}
			if err := p.Validate(); err != nil {
				return explain(err)
			}
			return o.run(cmd, func(ctx context.Context, c *api.Client) error {
				x, err := c.CreateContext(ctx, p)
				if err != nil {
					return err
				}
				if o.json() {
					return writeJSON(cmd.OutOrStdout(), x)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "context %s: %s -> %s, %s\n", api.FormatTag(x.LocalTag), x.LocalULID, x.PeerULID, x.State)
				return nil
			})
		},
	}

	del := &cobra.Command{
		Use:     "delete TAG|PEER-ULID",
		Aliases: []string{"del", "rm"},
		Short:   "Tear a context down",
		Long: `Delete a context: its data-plane state is removed at once and traffic
goes back to the ULIDs. The peer finds out by itself (REAP, or R1bis when
payload with our old tag reaches us).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return refCommand(cmd, o, args[0], local, "deleted", (*api.Client).DeleteContext)
		},
	}
	refArgs(del)

	var sendTimeout time.Duration
	set := &cobra.Command{
		Use:   "set TAG|PEER-ULID --send-timeout DURATION",
		Short: "Change a context's REAP Send Timeout",
		Long: `Set the REAP Send Timeout of one context (how long its outbound traffic
may go unanswered before exploration starts, RFC 5534 §7), in whole seconds
from 1s to 65535s; 0 goes back to reap.send_timeout. The peer is told in an
Update Request (Keepalive Timeout option, RFC 5534 §5.3), so that it sends
keepalives often enough. The context must be established.`,
		Example: `  shim6ctl context set 0x2a3b4c5d6e7f --send-timeout 3s`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("send-timeout") {
				return errors.New("nothing to set: give --send-timeout")
			}
			if sendTimeout < 0 || sendTimeout%time.Second != 0 || sendTimeout > 65535*time.Second {
				return fmt.Errorf("--send-timeout %v: whole seconds from 1s to 65535s, or 0 for the default", sendTimeout)
			}
			ref, err := parseRef(args[0], local)
			if err != nil {
				return err
			}
			p := api.SetParams{ContextRef: ref, SendTimeoutSeconds: uint16(sendTimeout / time.Second)}
			return o.run(cmd, func(ctx context.Context, c *api.Client) error {
				if err := c.Set(ctx, p); err != nil {
					return err
				}
				if o.json() {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"context": ref, "result": "set", "send_timeout_seconds": p.SendTimeoutSeconds})
				}
				v := "default"
				if sendTimeout != 0 {
					v = sendTimeout.String()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "context %s: send timeout %s\n", ref, v)
				return nil
			})
		},
	}
	set.Flags().DurationVar(&sendTimeout, "send-timeout", 0, "REAP Send Timeout for this context (0: reap.send_timeout)")
	refArgs(set)

	cmd.AddCommand(show, add, del, set)
	return cmd
}

// refCommand runs a method that takes a context reference and returns
// nothing, and confirms with "context X: <done>".
func refCommand(cmd *cobra.Command, o *clientOpts, arg, local, done string, f func(*api.Client, context.Context, api.ContextRef) error) error {
	ref, err := parseRef(arg, local)
	if err != nil {
		return err
	}
	return o.run(cmd, func(ctx context.Context, c *api.Client) error {
		if err := f(c, ctx, ref); err != nil {
			return err
		}
		if o.json() {
			return writeJSON(cmd.OutOrStdout(), map[string]any{"context": ref, "result": done})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "context %s: %s\n", ref, done)
		return nil
	})
}

func writeContext(w io.Writer, now time.Time, x api.Context) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	peerTag := "-"
	if x.PeerTag != 0 {
		peerTag = api.FormatTag(x.PeerTag)
	}
	fmt.Fprintf(tw, "context\t%s (peer tag %s", api.FormatTag(x.LocalTag), peerTag)
	if x.FII != 0 {
		fmt.Fprintf(tw, ", forked instance %d", x.FII)
	}
	fmt.Fprintln(tw, ")")
	fmt.Fprintf(tw, "ULIDs\t%s -> %s\n", x.LocalULID, x.PeerULID)
	loc := pair(x)
	if x.Pinned {
		loc += " (pinned)"
	}
	fmt.Fprintf(tw, "locators\t%s\n", loc)
	fmt.Fprintf(tw, "state\t%s\n", x.State)
	fmt.Fprintf(tw, "REAP\t%s\n", orDash(x.REAPState))
	if x.PeerKeepaliveTimeoutSeconds != 0 {
		fmt.Fprintf(tw, "peer send timeout\t%ds (it expects a packet from us that often)\n", x.PeerKeepaliveTimeoutSeconds)
	}
	fmt.Fprintf(tw, "age\t%s\n", ago(now, x.Created))
	sw := ago(now, x.LastSwitch)
	if !x.LastSwitch.IsZero() {
		sw += fmt.Sprintf(" ago, %d switches", x.Switches)
		if x.LastSwitchReason != "" {
			sw += ", last because " + x.LastSwitchReason
		}
	}
	fmt.Fprintf(tw, "last switch\t%s\n", sw)
	t := x.Traffic
	fmt.Fprintf(tw, "sent\t%d packets, %s, last %s\n", t.TxPackets, humanBytes(t.TxBytes), agoSuffix(now, t.LastSent))
	fmt.Fprintf(tw, "received\t%d packets, %s, last %s\n", t.RxPackets, humanBytes(t.RxBytes), agoSuffix(now, t.LastReceived))
	tw.Flush()
	writeLocators(w, "local locators", x.LocalLocators)
	writeLocators(w, "peer locators", x.PeerLocators)
}

func agoSuffix(now, t time.Time) string {
	s := ago(now, t)
	if t.IsZero() {
		return s
	}
	return s + " ago"
}

func writeLocators(w io.Writer, title string, ls []api.Locator) {
	if title != "" {
		fmt.Fprintf(w, "\n%s:\n", title)
	}
	if len(ls) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ADDRESS\tINTERFACE\tVERIFICATION\tSTATE\tREACHABLE\tPREF")
	for _, l := range ls {
		pref := "-"
		if l.Preference != 0 || l.Flags != 0 {
			pref = fmt.Sprintf("%d", l.Preference)
			if l.Flags != 0 {
				pref += fmt.Sprintf(" flags %#x", l.Flags)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", l.Addr, orDash(l.Interface), orDash(l.Verification), orDash(shout(l.State)), orDash(l.Reachable), pref)
	}
	tw.Flush()
}

// shout makes a failed verification stand out in a table of "verified".
func shout(state string) string {
	if state == "failed" {
		return strings.ToUpper(state)
	}
	return state
}
