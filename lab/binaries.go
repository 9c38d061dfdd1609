package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the goshim6 module, used to recognise its source tree.
const ModulePath = "github.com/goshim6/goshim6"

// ErrNoBinaries is returned when shim6d/shim6ctl can be neither found nor
// built.
var ErrNoBinaries = errors.New("lab: shim6d and shim6ctl not found")

// Binaries are the goshim6 programs a lab run starts in its hosts.
type Binaries struct {
	Shim6d   string `json:"shim6d"`
	Shim6ctl string `json:"shim6ctl"`
	// Source says where they came from: "dir", "next to the executable",
	// "built from <tree>" or "PATH".
	Source string `json:"source"`
}

// FindBinaries locates shim6d and shim6ctl, in this order: in dir when it
// is not empty (and only there); next to the running executable (a
// `go build -o DIR/ ./cmd/...`); built into buildDir from the goshim6
// source tree that contains the working directory (`go run
// ./cmd/shim6lab` from a checkout; needs the Go toolchain); in PATH.
func FindBinaries(ctx context.Context, dir, buildDir string) (Binaries, error) {
	if dir != "" {
		b := Binaries{Shim6d: filepath.Join(dir, "shim6d"), Shim6ctl: filepath.Join(dir, "shim6ctl"), Source: "dir"}
		if !executable(b.Shim6d) || !executable(b.Shim6ctl) {
			return b, fmt.Errorf("%w in %s", ErrNoBinaries, dir)
		}
		return b, nil
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		b := Binaries{Shim6d: filepath.Join(d, "shim6d"), Shim6ctl: filepath.Join(d, "shim6ctl"), Source: "next to the executable"}
		if executable(b.Shim6d) && executable(b.Shim6ctl) {
			return b, nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if root, ok := ModuleRoot(wd); ok {
			return BuildBinaries(ctx, root, buildDir)
		}
	}
	d, err1 := exec.LookPath("shim6d")
	c, err2 := exec.LookPath("shim6ctl")
	if err1 == nil && err2 == nil {
		return Binaries{Shim6d: d, Shim6ctl: c, Source: "PATH"}, nil
	}
	return Binaries{}, fmt.Errorf("%w: put them next to shim6lab (go build -o DIR/ ./cmd/...), run from a goshim6 checkout with Go installed, or pass --bin DIR", ErrNoBinaries)
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// ModuleRoot walks up from dir to the goshim6 source tree's root.
func ModuleRoot(dir string) (string, bool) {
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			s := bufio.NewScanner(f)
			ok := false
			for s.Scan() {
				if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
					ok = strings.TrimSpace(strings.TrimPrefix(line, "module ")) == ModulePath
					break
				}
			}
			f.Close()
			if ok {
				return dir, true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// goTool finds the go command (sudo's PATH often lacks it).
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/local/go/bin/go", "/usr/lib/go/bin/go"} {
		if executable(p) {
			return p, nil
		}
	}
	return "", errors.New("lab: the go command is not in PATH")
}

// BuildBinaries builds shim6d and shim6ctl from the source tree at root
// into dir (created if needed).
func BuildBinaries(ctx context.Context, root, dir string) (Binaries, error) {
	gobin, err := goTool()
	if err != nil {
		return Binaries{}, fmt.Errorf("%w: %v", ErrNoBinaries, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("lab: %w", err)
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", dir+string(filepath.Separator), "./cmd/shim6d", "./cmd/shim6ctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("lab: go build in %s: %v\n%s", root, err, out)
	}
	return Binaries{Shim6d: filepath.Join(dir, "shim6d"), Shim6ctl: filepath.Join(dir, "shim6ctl"), Source: "built from " + root}, nil
}
