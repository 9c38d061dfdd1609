package main

// Shared plumbing of the commands that talk to shim6d: the --socket,
// --output and --timeout flags, the connection, output helpers and context
// references on the command line.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/goshim6/goshim6/api"
)

// clientOpts are the flags every daemon command has.
type clientOpts struct {
	socket  string
	output  string
	timeout time.Duration
}

// addClientFlags adds --socket, --output/-o and --timeout to cmd (as
// persistent flags, so that subcommands inherit them).
func addClientFlags(cmd *cobra.Command) *clientOpts {
	o := &clientOpts{}
	def := os.Getenv("SHIM6D_SOCKET")
	if def == "" {
		def = api.DefaultSocket
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.socket, "socket", def, "shim6d management socket (env SHIM6D_SOCKET)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on the daemon after this long")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return o
}

func (o *clientOpts) json() bool { return o.output == "json" }

func (o *clientOpts) check() error {
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output must be text or json, not %q", o.output)
	}
	return nil
}

// run connects to shim6d and calls f with a context bounded by --timeout.
func (o *clientOpts) run(cmd *cobra.Command, f func(ctx context.Context, c *api.Client) error) error {
	if err := o.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	c, err := api.Dial(ctx, o.socket)
	if err != nil {
		return err
	}
	defer c.Close()
	return explain(f(ctx, c))
}

// explain turns daemon errors into one readable line.
func explain(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("shim6d: %s", ae.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("shim6d did not answer in time (see --timeout)")
	}
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseRef reads a context reference: a tag (decimal or 0x hex) or a peer
// ULID, with an optional local ULID from --local.
func parseRef(arg, local string) (api.ContextRef, error) {
	var r api.ContextRef
	if !strings.Contains(arg, ":") {
		t, err := api.ParseTag(arg)
		if err != nil {
			return r, fmt.Errorf("%q is neither a context tag nor a peer ULID", arg)
		}
		if local != "" {
			return r, errors.New("--local goes with a peer ULID, not with a tag")
		}
		r.Tag = t
		return r, nil
	}
	a, err := netip.ParseAddr(arg)
	if err != nil {
		return r, fmt.Errorf("%q is not an IPv6 address: %v", arg, err)
	}
	r.PeerULID = a
	if local != "" {
		if r.LocalULID, err = netip.ParseAddr(local); err != nil {
			return r, fmt.Errorf("--local %q: %v", local, err)
		}
	}
	return r, r.Validate()
}

// completeContexts offers the tags of the daemon's contexts, described by
// their peer and state.
func completeContexts(o *clientOpts) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := api.Dial(ctx, o.socket)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		cs, err := c.Contexts(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, x := range cs {
			out = append(out, cobra.CompletionWithDesc(api.FormatTag(x.LocalTag), x.PeerULID.String()+" "+x.State))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// humanCount prints 1234 as 1.2k.
func humanCount(n uint64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1e6:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.1fG", float64(n)/1e9)
	}
}

// humanBytes prints bytes with binary units.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ago prints how long before now t was, coarsely: "3s", "5m", "2h10m",
// "4d"; "never" for a zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(now.Sub(t))
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// pair prints a locator pair, or "= ULIDs" when it is the ULID pair.
func pair(c api.Context) string {
	if !c.LocalLocator.IsValid() && !c.PeerLocator.IsValid() {
		return "-"
	}
	if c.LocalLocator == c.LocalULID && c.PeerLocator == c.PeerULID {
		return "= ULIDs"
	}
	return addrOr(c.LocalLocator) + " > " + addrOr(c.PeerLocator)
}

func addrOr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
