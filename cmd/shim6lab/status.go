package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newStatusCmd) }

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab's hosts, locators, links (ok or how they are broken) and processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			l, err := g.manager().Open(g.name)
			if err != nil {
				return err
			}
			defer l.Close()
			st, err := l.Status()
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s, up since %s: %d hosts, %d providers", title(g.name), st.Created.Local().Format("2006-01-02 15:04:05"), st.Config.Hosts, st.Config.Providers)
			if st.Config.Delay > 0 || st.Config.CoreDelay > 0 {
				fmt.Fprintf(w, ", delay %v per uplink, %v per core link (relayed by the process in core)", st.Config.Delay, st.Config.CoreDelay)
			}
			fmt.Fprint(w, "\n\n")
			printNodes(w, st)
			fmt.Fprintf(w, "\n%-10s %s\n", "LINK", "STATE")
			for _, ls := range st.Links {
				fmt.Fprintf(w, "%-10s %s\n", ls.Name, ls.State)
			}
			return nil
		},
	}
}
