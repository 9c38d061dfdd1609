package ebpf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ensureBPFFS makes sure dir lies on a bpffs, mounting one on dir's parent
// when the nearest existing ancestor is not a bpffs (this machine's
// /sys/fs/bpf, for one, is not mounted at boot).
func ensureBPFFS(dir string) error {
	if onBPFFS(dir) {
		return os.MkdirAll(dir, 0o700)
	}
	mnt := filepath.Dir(dir)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if !onBPFFS(mnt) {
		if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs on %s: %w", mnt, err)
		}
	}
	return os.MkdirAll(dir, 0o700)
}

// onBPFFS reports whether the nearest existing ancestor of p is on a bpffs.
func onBPFFS(p string) bool {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			return st.Type == unix.BPF_FS_MAGIC
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false
		}
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
	}
}
