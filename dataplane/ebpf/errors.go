package ebpf

import "errors"

var (
	// ErrKernelFeature: the running kernel lacks something the data plane
	// needs; the error names the feature and the kernel that added it.
	ErrKernelFeature = errors.New("kernel lacks a feature the shim6 data plane needs")
	// ErrIncompatiblePin: the pin directory holds maps of an incompatible
	// layout (an older or newer goshim6); Destroy them first.
	ErrIncompatiblePin = errors.New("pinned shim6 maps have an incompatible layout")
	// ErrInvalidMapping: Install was given a mapping the data plane cannot use.
	ErrInvalidMapping = errors.New("invalid mapping")
	// ErrNoRoute: no uplink reaches the peer locator from the local locator.
	ErrNoRoute = errors.New("no route for the locator pair")
	// ErrClosed: the DataPlane was closed.
	ErrClosed = errors.New("data plane closed")
	// ErrConfig: the Config is unusable.
	ErrConfig = errors.New("invalid data plane configuration")
)
