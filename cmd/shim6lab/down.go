package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newDownCmd) }

func newDownCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the lab: its namespaces (found by name, even after a crash), the processes inside, its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			m := g.manager()
			names := []string{g.name}
			if all {
				labs, err := m.Labs()
				if err != nil {
					return err
				}
				names = labs
			}
			var removed []string
			var errs []error
			for _, n := range names {
				r, err := m.Down(n)
				removed = append(removed, r...)
				errs = append(errs, err)
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if g.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"removed": removed})
			}
			if len(removed) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to remove")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d namespaces\n", len(removed))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every lab on this machine")
	return cmd
}
