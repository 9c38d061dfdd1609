package main

import (
	"context"
	"encoding/json"
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
	addCommand(newLocatorsCmd)
	addCommand(newStatsCmd)
	addCommand(newWatchCmd)
}

func newLocatorsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "locators",
		Short: "List the local locators and how peers can verify them",
		Long: `List the local addresses shim6d uses as locators, with their interface,
the verification method peers use for them (hba, cga), and their state
(usable, deprecated). The peers' locators, with their verification state,
are shown per context by "shim6ctl context show".`,
		Args: cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.run(cmd, func(ctx context.Context, c *api.Client) error {
			l, err := c.Locators(ctx)
			if err != nil {
				return err
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			w := cmd.OutOrStdout()
			writeLocators(w, fmt.Sprintf("local locators (list generation %d)", l.Generation), l.Local)
			for _, x := range l.Local {
				if x.Verification == "none" {
					fmt.Fprintln(w, "\nverification none: not in the HBA set (and no CGA key), so peers cannot verify it;\nit can still be a ULID but is not offered to peers as an alternative locator.")
					break
				}
			}
			return nil
		})
	}
	return cmd
}

func newStatsCmd() *cobra.Command {
	var filter string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the daemon's counters",
		Long: `Show the counters of the engine (messages sent and received by type,
drops by reason), the data plane, the raw socket and the event loop, sorted
by name. Zero counters are hidden unless --all.`,
		Example: `  shim6ctl stats
  shim6ctl stats --filter drop`,
		Args: cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	var all bool
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show zero counters too")
	cmd.Flags().StringVar(&filter, "filter", "", "only counters whose name contains this")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.run(cmd, func(ctx context.Context, c *api.Client) error {
			s, err := c.Stats(ctx)
			if err != nil {
				return err
			}
			for k, v := range s.Counters {
				if (!all && v == 0) || !strings.Contains(k, filter) {
					delete(s.Counters, k)
				}
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			var keys []string
			for k := range s.Counters {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			for _, k := range keys {
				fmt.Fprintf(tw, "%d\t  %s\t\n", s.Counters[k], k)
			}
			tw.Flush()
			if len(keys) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no counters (try --all)")
			}
			return nil
		})
	}
	return cmd
}

func newWatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print events as they happen (contexts, switches, updates, failures)",
		Long: `Follow shim6d's event stream until interrupted: contexts created,
established and deleted, locator switches with their reason, REAP
exploration, Updates, verification failures, local locator changes.
With -o json, one JSON object per line.`,
		Args: cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	var count int
	cmd.Flags().IntVarP(&count, "count", "n", 0, "exit after this many events (0: never)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := o.check(); err != nil {
			return err
		}
		// No --timeout on a watch: only the dial is bounded.
		dctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		c, err := api.Dial(dctx, o.socket)
		cancel()
		if err != nil {
			return err
		}
		defer c.Close()
		w := cmd.OutOrStdout()
		n := 0
		errStop := fmt.Errorf("stop")
		err = c.Watch(cmd.Context(), func(ev api.Event) error {
			if o.json() {
				b, _ := json.Marshal(ev)
				fmt.Fprintf(w, "%s\n", b)
			} else {
				writeEvent(w, ev)
			}
			n++
			if count > 0 && n >= count {
				return errStop
			}
			return nil
		})
		if err == errStop || err == context.Canceled {
			return nil
		}
		return explain(err)
	}
	return cmd
}

func writeEvent(w io.Writer, ev api.Event) {
	var b strings.Builder
	b.WriteString(ev.Time.Local().Format(time.TimeOnly + ".000"))
	fmt.Fprintf(&b, " %-19s", ev.Kind)
	if ev.Tag != 0 {
		fmt.Fprintf(&b, " %s", api.FormatTag(ev.Tag))
	}
	if ev.LocalULID.IsValid() || ev.PeerULID.IsValid() {
		fmt.Fprintf(&b, " %s -> %s", addrOr(ev.LocalULID), addrOr(ev.PeerULID))
	}
	if ev.Message != "" {
		b.WriteString(" " + ev.Message)
	}
	var keys []string
	for k := range ev.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, ev.Attrs[k])
	}
	fmt.Fprintln(w, b.String())
}
