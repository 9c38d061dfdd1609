package main

import (
	"context"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/api"
)

func init() { addCommand(newStatusCmd) }

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether shim6d runs, its security mode and a count of contexts",
		Long: `Show the daemon's version, uptime, security mode, data plane, the number
of local locators and of contexts by state, and any warnings (for example
the insecure lab mode).

Exit status 0 when the daemon answered, 1 otherwise.`,
		Example: `  shim6ctl status
  shim6ctl status -o json`,
		Args: cobra.NoArgs,
	}
	o := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.run(cmd, func(ctx context.Context, c *api.Client) error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.json() {
				return writeJSON(w, st)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "shim6d\t%s (pid %d)\n", st.Version, st.PID)
			fmt.Fprintf(tw, "up\t%s (since %s)\n", age(st.Now.Sub(st.Started)), st.Started.Local().Format("2006-01-02 15:04:05"))
			if st.Config != "" {
				fmt.Fprintf(tw, "config\t%s\n", st.Config)
			}
			fmt.Fprintf(tw, "security\t%s\n", st.Security)
			dp := st.DataPlane
			if st.Adopted {
				dp += " (adopted from the previous run)"
			}
			fmt.Fprintf(tw, "data plane\t%s\n", dp)
			fmt.Fprintf(tw, "locators\t%d\n", st.Locators)
			fmt.Fprintf(tw, "contexts\t%d%s\n", st.Contexts, byState(st.ContextsByState))
			if st.VerificationFailures > 0 {
				fmt.Fprintf(tw, "verification failures\t%d (peer locators that did not verify; see shim6ctl watch)\n", st.VerificationFailures)
			}
			tw.Flush()
			for _, wmsg := range st.Warnings {
				fmt.Fprintf(w, "WARNING: %s\n", wmsg)
			}
			return nil
		})
	}
	return cmd
}

func byState(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := " ("
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", m[k], k)
	}
	return s + ")"
}
