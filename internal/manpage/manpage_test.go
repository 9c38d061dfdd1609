package manpage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestWrite(t *testing.T) {
	root := &cobra.Command{Use: "tool", Short: "A tool"}
	sub := &cobra.Command{Use: "sub ARG", Short: "Do sub", Long: "Does sub things.", Run: func(*cobra.Command, []string) {}}
	sub.Flags().Bool("fast", false, "go fast")
	root.AddCommand(sub)
	root.AddCommand(Command(root, "8"))
	dir := t.TempDir()
	root.SetArgs([]string{"man", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tool-sub.8"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`.TH "TOOL-SUB" "8" "Nov 2026" "goshim6"`, "Does sub things.", "fast", "go fast"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "tool-man.8")); err == nil {
		t.Error("the hidden man command got a page")
	}
	// Reproducible: the same pages again.
	dir2 := t.TempDir()
	if err := Write(root, "8", dir2); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(filepath.Join(dir2, "tool-sub.8"))
	if string(b2) != page {
		t.Error("pages differ between two runs")
	}
}
