package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/lab"
)

func init() { addCommand(newUpCmd) }

func newUpCmd(g *globals) *cobra.Command {
	var cfg lab.Config
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build the lab: hosts, providers, core router, addresses and source routing",
		Long: `Build the lab: network namespaces for hosts a, b, ... and providers p1, p2,
..., each host with one uplink to each provider, providers joined by a core
router. IPv6 only; host h's locator via provider i is 2001:db8:i:h::2.
Hosts route by source address; providers drop packets whose source is not
theirs (BCP 38) unless --no-ingress-filter.

Link delay (--delay, --core-delay) is applied in each direction by a relay
process that up leaves running inside the core namespace (down stops it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needRoot(); err != nil {
				return err
			}
			l, err := g.manager().Up(g.name, cfg)
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
			fmt.Fprintf(w, "%s is up.\n\n", title(g.name))
			printNodes(w, st)
			fmt.Fprintf(w, "\nlinks: %s\n", strings.Join(linkNames(st), " "))
			a, b := st.Nodes[0], st.Nodes[len(l.Hosts)-1]
			fmt.Fprintf(w, "\ntry:   ip netns exec %s ping -c1 %s\n", a.Namespace, b.Locators[len(b.Locators)-1])
			fmt.Fprintf(w, "       shim6lab%s fail %s-p1      (and: shim6lab%s heal %s-p1)\n", nameFlag(g.name), a.Name, nameFlag(g.name), a.Name)
			fmt.Fprintf(w, "       shim6lab%s down\n", nameFlag(g.name))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Hosts, "hosts", 2, "number of hosts (a, b, c, ...; at most 16)")
	f.IntVar(&cfg.Providers, "providers", 2, "number of providers (p1, p2, ...; at most 16)")
	f.DurationVar(&cfg.Delay, "delay", 0, "one-way delay, each direction, on every host uplink")
	f.DurationVar(&cfg.CoreDelay, "core-delay", 0, "one-way delay, each direction, on every provider-core link")
	f.BoolVar(&cfg.NoIngressFilter, "no-ingress-filter", false, "let providers forward packets with any source")
	return cmd
}

func title(name string) string {
	if name == "" {
		return "The lab"
	}
	return "Lab " + name
}

func nameFlag(name string) string {
	if name == "" {
		return ""
	}
	return " --name " + name
}

func linkNames(st lab.Status) []string {
	var out []string
	for _, l := range st.Links {
		out = append(out, l.Name)
	}
	return out
}

func printNodes(w io.Writer, st lab.Status) {
	fmt.Fprintf(w, "%-6s %-22s %s\n", "NODE", "NAMESPACE", "LOCATORS / PROCESSES")
	for _, n := range st.Nodes {
		var extra []string
		for i, l := range n.Locators {
			extra = append(extra, fmt.Sprintf("%s (p%d)", l, i+1))
		}
		extra = append(extra, n.Processes...)
		fmt.Fprintf(w, "%-6s %-22s %s\n", n.Name, n.Namespace, strings.Join(extra, "  "))
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
