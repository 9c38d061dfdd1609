// Command shim6ctl is the control and diagnostics tool of goshim6.
//
// Offline commands (decode, cga, hba) work on any machine; the others talk
// to a running shim6d over its management socket. Each subcommand lives in
// its own file and registers itself with addCommand from an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/internal/manpage"
)

var commands []func() *cobra.Command

// addCommand registers a constructor for a top-level subcommand.
func addCommand(f func() *cobra.Command) { commands = append(commands, f) }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "shim6ctl",
		Short:         "Control and inspect goshim6 (Shim6, RFC 5533)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range commands {
		root.AddCommand(f())
	}
	root.AddCommand(manpage.Command(root, "8"))
	return root
}

// exitError carries an exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	if err := newRoot().Execute(); err != nil {
		if e, ok := err.(exitError); ok {
			os.Exit(e.code)
		}
		fmt.Fprintln(os.Stderr, "shim6ctl:", err)
		os.Exit(1)
	}
}
