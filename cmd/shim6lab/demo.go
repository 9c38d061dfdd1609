package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/lab"
)

func init() { addCommand(newDemoCmd) }

// runContext is cancelled by Ctrl-C or SIGTERM, so that a demo or a
// benchmark removes what it built before exiting.
func runContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// binaries finds shim6d/shim6ctl (or builds them into a temporary
// directory, removed by the returned function).
func binaries(ctx context.Context, dir string) (lab.Binaries, func(), error) {
	tmp, err := os.MkdirTemp("", "shim6lab-bin")
	if err != nil {
		return lab.Binaries{}, func() {}, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	b, err := lab.FindBinaries(ctx, dir, tmp)
	if err != nil {
		cleanup()
		return b, func() {}, err
	}
	return b, cleanup, nil
}

func newDemoCmd(g *globals) *cobra.Command {
	var (
		jsonOut, verbose      bool
		svg, pcap, bin        string
		traffic, link, method string
		sendTimeout, delay    time.Duration
		before, after         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Two multihomed hosts, shim6d on both, a TCP stream, a provider failure: watch the stream survive",
		Long: `Run the goshim6 demo (needs root: it creates network namespaces, loads eBPF
programs and starts shim6d; about 15 seconds).

It builds the lab (hosts a and b, providers p1 and p2, in network namespaces
named s6lab-demo-*), starts shim6d on both hosts with the eBPF data plane,
opens a TCP connection between their ULIDs (their first HBA addresses) and
streams verifiable content. Once the Shim6 context is established it breaks
the provider link in use (a-p1, silently), and prints a live timeline: the
failure, REAP exploring, the new locator pair, the stream continuing. The
summary gives the application gap, the packet-level switch time, bytes sent
and received (verified byte by byte) and the throughput before and after;
an SVG plot shows the throughput around the failure.

REAP timers are tuned for the demo (Send Timeout 1 s instead of the RFC's
15 s; TCP retransmission timeouts are also fed to REAP as ULP advice).
Everything is removed at the end, also on Ctrl-C or error; if the process
is killed, "shim6lab down --name demo" cleans up.

shim6d and shim6ctl are taken from --bin, from next to shim6lab, built from
the source tree containing the current directory (go run ./cmd/shim6lab
demo), or from PATH.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if jsonOut {
				g.output = "json"
			}
			m, err := netns.ParseMethod(method)
			if err != nil {
				return err
			}
			tr := lab.Traffic(traffic)
			if tr != lab.Bulk && tr != lab.Paced {
				return fmt.Errorf("--traffic must be bulk or paced")
			}
			if err := needRoot(); err != nil {
				return err
			}
			ctx, stop := runContext()
			defer stop()
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			live := out
			if g.json() {
				live = errw
			}
			b, cleanup, err := binaries(ctx, bin)
			if err != nil {
				return err
			}
			defer cleanup()
			name := g.name
			if name == "" {
				name = "demo"
			}
			fmt.Fprintf(live, "goshim6 demo: hosts a and b, each multihomed to providers p1 and p2 (lab %q)\n", name)
			fmt.Fprintf(live, "shim6d: %s (%s)\n", b.Shim6d, b.Source)
			fmt.Fprintf(live, "REAP Send Timeout %v: tuned for the demo (RFC 5534 default 15 s); TCP RTOs are passed to REAP as ULP advice\n\n", sendTimeout)
			res, err := lab.RunDemo(ctx, lab.DemoConfig{
				Manager: g.manager(), Name: name, Bin: b, SendTimeout: sendTimeout, Traffic: tr,
				Link: link, Method: m, Delay: delay, Before: before, After: after,
				SVG: svg, Pcap: pcap, Live: live, Verbose: verbose,
			})
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintln(errw, "shim6lab: interrupted; the lab was removed")
					return exitError{130}
				}
				return err
			}
			if g.json() {
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else {
				lab.WriteDemoSummary(out, res)
			}
			if !res.OK {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON (same as -o json); the live timeline goes to stderr")
	f.BoolVarP(&verbose, "verbose", "v", false, "show every daemon event on the timeline")
	f.StringVar(&svg, "svg", "shim6lab-demo.svg", "write the throughput plot here (empty: none)")
	f.StringVar(&pcap, "pcap", "", "write host a's Shim6 packets to this pcap file (shim6ctl decode --pcap)")
	f.StringVar(&bin, "bin", "", "directory holding shim6d and shim6ctl")
	f.StringVar(&traffic, "traffic", "bulk", "bulk (one-way, as fast as TCP goes) or paced (two-way, 64 bytes every 10 ms)")
	f.StringVar(&link, "link", "a-p1", "the link to break")
	f.StringVar(&method, "method", "blackhole", "how to break it: blackhole (silent) or down")
	f.DurationVar(&sendTimeout, "send-timeout", time.Second, "REAP Send Timeout (RFC 5534 default 15s)")
	f.DurationVar(&delay, "delay", 0, "one-way delay on every host uplink")
	f.DurationVar(&before, "before", 3*time.Second, "stream time before the failure")
	f.DurationVar(&after, "after", 3*time.Second, "stream time after it recovered")
	return cmd
}
