package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/daemon"
)

// The hand-written man page names every flag and the defaults it states.
func TestManPage(t *testing.T) {
	b, err := os.ReadFile("../../dist/man/shim6d.8")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	fs, _, _, _ := newFlags()
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(page, `\fB\-`+f.Name+`\fP`) {
			t.Errorf("flag -%s not in dist/man/shim6d.8", f.Name)
		}
	})
	def := daemon.Default()
	for _, want := range []string{daemon.DefaultConfigPath, def.StateDir, api.DefaultSocket, def.DataPlane.PinDir} {
		if !strings.Contains(page, `\fI`+want+`\fP`) {
			t.Errorf("default %s not in dist/man/shim6d.8", want)
		}
	}
}
