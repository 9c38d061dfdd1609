// Command shim6lab builds and drives the goshim6 lab: network namespaces
// on this machine that form two multihomed hosts, each with an uplink to
// each of two providers (see docs/lab.md).
//
//	shim6lab up [--hosts N] [--providers N]   build the lab
//	shim6lab status [-o json]                 hosts, locators, links, processes
//	shim6lab fail LINK [--method blackhole|down] [--dir both|out|in]
//	shim6lab heal LINK|all
//	shim6lab down [--all]                     remove it (also after a crash)
//
// It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Each subcommand lives in
// its own file and registers itself with addCommand from an init function.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/internal/manpage"
	"github.com/goshim6/goshim6/lab"
)

var commands []func(*globals) *cobra.Command

// addCommand registers a constructor for a top-level subcommand.
func addCommand(f func(*globals) *cobra.Command) { commands = append(commands, f) }

// globals are the persistent flags.
type globals struct {
	name     string
	stateDir string
	output   string
}

func (g *globals) manager() lab.Manager {
	return lab.Manager{StateDir: g.stateDir, RelayCommand: g.relayCommand}
}

func (g *globals) json() bool { return g.output == "json" }

// needRoot fails early with a plain explanation.
func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and veth links (run it with sudo)")
	}
	return nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "shim6lab",
		Short:         "Build and drive a multihomed IPv6 lab in network namespaces for goshim6",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.name, "name", "", "lab name (several labs can coexist; default: the default lab, namespaces s6lab-*)")
	pf.StringVar(&g.stateDir, "state-dir", lab.DefaultStateDir, "where lab state files live")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	_ = pf.MarkHidden("state-dir")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if g.output != "text" && g.output != "json" {
			return fmt.Errorf("unknown output format %q (text or json)", g.output)
		}
		return lab.CheckName(g.name)
	}
	for _, f := range commands {
		root.AddCommand(f(g))
	}
	root.AddCommand(manpage.Command(root, "8"))
	return root
}

// exitError carries an exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var e exitError
		if errors.As(err, &e) {
			return e.code
		}
		fmt.Fprintln(stderr, "shim6lab:", err)
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
