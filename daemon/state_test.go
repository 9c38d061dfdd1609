package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestStateDirLockAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	// Single instance: a second open fails and names our pid.
	_, err = OpenStateDir(dir)
	if !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second open: %v", err)
	}
	if err := s.WriteFile("identity.json", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(filepath.Join(dir, "identity.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fi.Mode().Perm())
	}
	b, err := s.ReadFile("identity.json")
	if err != nil || string(b) != `{"x":1}` {
		t.Fatalf("read back %q %v", b, err)
	}
	// Overwrite is atomic and leaves no temporary files.
	if err := s.WriteFile("identity.json", []byte("2")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("state dir holds %d entries, want lock + identity", len(ents))
	}
	// A file others can read is refused.
	os.Chmod(filepath.Join(dir, "identity.json"), 0o644)
	if _, err := s.ReadFile("identity.json"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable file: %v", err)
	}
	s.Close()
	// After Close another instance may start.
	s2, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestStateDirTightensMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	os.Mkdir(dir, 0o755)
	os.Chmod(dir, 0o755)
	s, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", fi.Mode().Perm())
	}
}
