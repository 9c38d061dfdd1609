package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/lab"
)

func init() { addCommand(newBenchCmd) }

func newBenchCmd(g *globals) *cobra.Command {
	var (
		jsonOut          bool
		svg, bin, from   string
		scenarios, traff string
		reps             int
		tuned, tput      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure failover gaps of Shim6 (RFC timers, tuned, ULP feedback), MPTCP and plain TCP, and throughput",
		Long: `Measure, in one run on the same topology and with the same traffic, how
long an application stalls when its provider fails silently (a-p1
blackholed), for:

  tcp              plain TCP between the provider-1 addresses (no Shim6)
  mptcp-active     MPTCP with a second subflow from a's provider-2 address
  mptcp-backup     the same with the second subflow in backup mode
  shim6-rfc        shim6d with RFC 5534's default Send Timeout (15 s), no ULP feedback
  shim6-tuned      shim6d with a tuned Send Timeout (--tuned), no ULP feedback
  shim6-ulp        shim6d, 15 s Send Timeout, TCP RTOs fed to REAP (sock_ops)
  shim6-ulp-nofrr  the same with the data plane's fast reroute off (only with a
                   shim6d that has dataplane.fast_reroute)
  shim6-tuned-ulp  both (the demo's setting)

with two kinds of traffic: paced (both ends send 64 bytes every 10 ms) and
bulk (one-way, as fast as TCP goes). Each run builds a fresh lab. The gap
is the time from the last data before the outage to data flowing steadily
again (300 ms without a pause of 150 ms); the longest single pause and the
goodput before and after are shown too; every byte is verified. Then bulk throughput is measured without Shim6,
with a context on the ULIDs, and with the traffic rewritten onto other
locators. Output: a table with median/min/max, the issue's targets (met or
not), --json, and an SVG plot. Needs root. Takes several minutes (the RFC
timer runs alone need 15 s each).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if jsonOut {
				g.output = "json"
			}
			if from != "" {
				return renderBench(cmd, from, svg)
			}
			cfg := lab.BenchConfig{Manager: g.manager(), Name: g.name, Reps: reps, Tuned: tuned, ThroughputTime: tput, SVG: svg}
			if cfg.Name == "" {
				cfg.Name = "bench"
			}
			if scenarios != "" {
				cfg.Scenarios = strings.Split(scenarios, ",")
			}
			if traff != "" {
				for _, t := range strings.Split(traff, ",") {
					if lab.Traffic(t) != lab.Paced && lab.Traffic(t) != lab.Bulk {
						return fmt.Errorf("--traffic: %q is not paced or bulk", t)
					}
					cfg.Traffic = append(cfg.Traffic, lab.Traffic(t))
				}
			}
			if err := needRoot(); err != nil {
				return err
			}
			ctx, stop := runContext()
			defer stop()
			out := cmd.OutOrStdout()
			cfg.Live = out
			if g.json() {
				cfg.Live = cmd.ErrOrStderr()
			}
			b, cleanup, err := binaries(ctx, bin)
			if err != nil {
				return err
			}
			defer cleanup()
			cfg.Bin = b
			fmt.Fprintf(cfg.Live, "shim6d: %s (%s)\n", b.Shim6d, b.Source)
			res, err := lab.RunBench(ctx, cfg)
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "shim6lab: interrupted; the lab was removed")
					return exitError{130}
				}
				return err
			}
			if g.json() {
				return writeJSON(out, res)
			}
			fmt.Fprintln(out)
			lab.WriteBenchTable(out, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, "print the result as JSON (same as -o json); progress goes to stderr")
	f.StringVar(&svg, "svg", "shim6lab-bench.svg", "write the plot here (empty: none)")
	f.StringVar(&bin, "bin", "", "directory holding shim6d and shim6ctl")
	f.StringVar(&from, "from-json", "", "do not measure: print the table (and --svg) of a saved --json result")
	f.StringVar(&scenarios, "scenarios", "", "comma-separated subset of the scenarios (default all)")
	f.StringVar(&traff, "traffic", "", "paced, bulk or both (default both)")
	f.IntVarP(&reps, "reps", "n", 3, "repetitions of every scenario and traffic")
	f.DurationVar(&tuned, "tuned", time.Second, "the tuned REAP Send Timeout")
	f.DurationVar(&tput, "throughput-time", 4*time.Second, "length of each throughput measurement (negative: skip)")
	return cmd
}

// renderBench prints the table of a saved result and redraws its plot.
func renderBench(cmd *cobra.Command, path, svg string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res lab.BenchResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// The targets are evaluated again from the measurements: the rules may
	// be newer than the file.
	res.Targets = lab.BenchTargets(res.Rows, res.Throughput)
	res.SVG = ""
	if svg != "" {
		if err := os.WriteFile(svg, lab.BenchChart(res).SVG(), 0o644); err != nil {
			return err
		}
		res.SVG = svg
	}
	lab.WriteBenchTable(cmd.OutOrStdout(), res)
	return nil
}
