// Package manpage generates the man pages of the goshim6 commands built
// with cobra (shim6ctl, shim6lab) through cobra's own doc package.
package manpage

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// epoch dates the pages: a fixed date keeps the generated files
// reproducible (scripts/check-generated.sh compares them).
var epoch = time.Date(2026, time.November, 25, 0, 0, 0, 0, time.UTC)

// Write writes one page per command of root's tree into dir, in the given
// man section ("8" for administration commands).
func Write(root *cobra.Command, section, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{
		Title:   "",
		Section: section,
		Source:  "goshim6",
		Manual:  "goshim6 manual",
		Date:    &epoch,
	}
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// Command is a hidden "man DIR" subcommand that writes root's pages.
func Command(root *cobra.Command, section string) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write the man pages of this command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Write(root, section, args[0])
		},
	}
}
