package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning is returned when another shim6d holds the lock.
var ErrAlreadyRunning = errors.New("another shim6d is running")

// StateDir is shim6d's state directory: mode 0700, files 0600, and an
// exclusive lock that makes shim6d a single instance.
type StateDir struct {
	Path string
	lock *os.File
}

// LockFile is the name of the lock file inside the state directory.
const LockFile = "shim6d.lock"

// OpenStateDir creates dir (0700) if needed, tightens a looser mode, and
// takes the instance lock. It fails with ErrAlreadyRunning, naming the
// holder's pid, if another shim6d runs with the same directory.
func OpenStateDir(dir string) (*StateDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory %s has mode %v and cannot be made 0700: %w", dir, fi.Mode().Perm(), err)
		}
	}
	lp := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := "unknown pid"
		if b, rerr := os.ReadFile(lp); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = "pid " + pid
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s holds %s)", ErrAlreadyRunning, holder, lp)
		}
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &StateDir{Path: dir, lock: f}, nil
}

// Close releases the lock.
func (s *StateDir) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// ReadFile reads a file of the state directory. It refuses a file that
// others may read or write: it may hold a private key.
func (s *StateDir) ReadFile(name string) ([]byte, error) {
	return readPrivate(filepath.Join(s.Path, name))
}

func readPrivate(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("refusing %s: mode %v lets others read it; run chmod 600 %s", p, fi.Mode().Perm(), p)
	}
	b := make([]byte, 0, fi.Size())
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
		if len(b) > 16<<20 {
			return nil, fmt.Errorf("%s is larger than 16 MiB", p)
		}
	}
	return b, nil
}

// WriteFile replaces a file of the state directory atomically (temporary
// file, fsync, rename, fsync of the directory), with mode 0600.
func (s *StateDir) WriteFile(name string, data []byte) error {
	p := filepath.Join(s.Path, name)
	tmp, err := os.CreateTemp(s.Path, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	if d, err := os.Open(s.Path); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Exists reports whether name exists in the state directory.
func (s *StateDir) Exists(name string) bool {
	_, err := os.Lstat(filepath.Join(s.Path, name))
	return !errors.Is(err, fs.ErrNotExist)
}

// decodeStrictJSON decodes one JSON value, refusing unknown fields.
func decodeStrictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
