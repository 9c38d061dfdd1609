package ebpf

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// nsRunner runs functions inside a network namespace. The zero value runs
// them in the caller's.
type nsRunner struct {
	ns    netns.NsHandle
	valid bool
}

func openNS(path string) (nsRunner, error) {
	if path == "" {
		return nsRunner{}, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nsRunner{}, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return nsRunner{ns: h, valid: true}, nil
}

func (r nsRunner) close() {
	if r.valid {
		r.ns.Close()
	}
}

// do runs fn on a locked OS thread inside the namespace. Things that
// resolve interface indexes or open sockets in "the current namespace"
// (tcx and XDP attach, ioctls, /proc/sys/net) go through here.
func (r nsRunner) do(fn func() error) error {
	if !r.valid {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the thread stays locked and dies with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(r.ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- ferr
			return // do not unlock: the thread is in the wrong namespace
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
