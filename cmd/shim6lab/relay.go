package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/lab"
)

func init() { addCommand(newRelayCmd) }

// relayCommand is how `up` starts the background relay of a lab with
// delayed links: this same binary, hidden subcommand "relay".
func (g *globals) relayCommand(name string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := []string{"--state-dir", g.manager().StateDir, "relay"}
	if name != "" {
		args = append([]string{"--name", name}, args...)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = os.Environ()
	return cmd
}

func newRelayCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "relay",
		Short:  "Run the delay relays of a lab (started by up; stopped by down)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.manager().Open(g.name)
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.StartRelays(); err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
			if f := os.NewFile(lab.RelayReadyFd, "ready"); f != nil {
				f.Write([]byte("ready"))
				f.Close()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "relaying %s\n", title(g.name))
			s := <-sig
			fmt.Fprintf(cmd.OutOrStdout(), "stopping on %v\n", s)
			return nil
		},
	}
}
