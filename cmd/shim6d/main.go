// Command shim6d is the goshim6 daemon: Shim6 (RFC 5533) with REAP
// (RFC 5534) failure detection, HBA (RFC 5535) / CGA (RFC 3972) security
// and an eBPF data plane, for a multihomed Linux host.
//
// Usage:
//
//	shim6d [-config /etc/shim6d/shim6d.toml] [-check] [-version]
//
// It needs root. It is meant to run under systemd (dist/shim6d.service,
// Type=notify): SIGHUP rereads the configuration, SIGTERM stops it.
// docs/operations.md tells how to run it; docs/configuration.md lists every
// configuration key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/goshim6/goshim6/daemon"
)

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				if v == "" || v == "(devel)" {
					v = "devel"
				}
				v += "+" + s.Value[:12]
			}
		}
		if v != "" && v != "(devel)" {
			return v
		}
	}
	return "devel"
}

func main() {
	os.Exit(run())
}

// newFlags defines shim6d's flags (dist/man/shim6d.8 documents each).
func newFlags() (fs *flag.FlagSet, cfgPath *string, check, showVersion *bool) {
	fs = flag.NewFlagSet("shim6d", flag.ContinueOnError)
	cfgPath = fs.String("config", daemon.DefaultConfigPath, "configuration file (TOML); a missing default file means all defaults")
	check = fs.Bool("check", false, "check the configuration file and exit")
	showVersion = fs.Bool("version", false, "print the version and exit")
	return fs, cfgPath, check, showVersion
}

func run() int {
	fs, cfgPath, check, showVersion := newFlags()
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: shim6d [flags]\n\nThe goshim6 daemon (Shim6, RFC 5533). Runs as root, normally under systemd.\nSee docs/operations.md and docs/configuration.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "shim6d: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Println("shim6d", version())
		return 0
	}
	if !*check && os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "shim6d: must run as root: it opens raw sockets, loads eBPF programs and changes addresses and routing rules (shim6d -check works as any user)")
		return 1
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})
	cfg, err := daemon.LoadConfig(*cfgPath, !explicit)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shim6d: %v\n", err)
		return 1
	}
	if *check {
		fmt.Printf("%s: OK\n", *cfgPath)
		return 0
	}

	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level.Set(slog.LevelInfo)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(h)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d := daemon.New(daemon.Options{
		ConfigPath: *cfgPath,
		Config:     cfg,
		Version:    version(),
		Logger:     log,
		LogLevel:   level,
		Env:        daemon.HostEnvironment(),
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading the configuration")
			d.Reload(ctx)
		}
	}()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "shim6d: %v\n", err)
		return 1
	}
	return 0
}
