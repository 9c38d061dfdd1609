package ebpf

import (
	"errors"
	"fmt"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

type featureCheck struct {
	what, kernel string
	probe        func() error
}

func requiredFeatures(cfg Config) []featureCheck {
	checks := []featureCheck{
		{"tc (sched_cls) BPF programs", "4.1", func() error { return features.HaveProgramType(cebpf.SchedCLS) }},
		{"cgroup_skb BPF programs", "4.10", func() error { return features.HaveProgramType(cebpf.CGroupSKB) }},
		{"sock_ops BPF programs", "4.13", func() error { return features.HaveProgramType(cebpf.SockOps) }},
		{"LRU hash maps", "4.10", func() error { return features.HaveMapType(cebpf.LRUHash) }},
		{"ring buffer maps", "5.8", func() error { return features.HaveMapType(cebpf.RingBuf) }},
		{"bpf_skb_adjust_room", "4.13", func() error { return features.HaveProgramHelper(cebpf.SchedCLS, asm.FnSkbAdjustRoom) }},
		{"bpf_redirect_neigh", "5.10", func() error { return features.HaveProgramHelper(cebpf.SchedCLS, asm.FnRedirectNeigh) }},
		{"bpf_get_netns_cookie in sock_ops", "5.8", func() error { return features.HaveProgramHelper(cebpf.SockOps, asm.FnGetNetnsCookie) }},
	}
	if cfg.XDP {
		checks = append(checks,
			featureCheck{"XDP BPF programs", "4.8", func() error { return features.HaveProgramType(cebpf.XDP) }},
			featureCheck{"bpf_xdp_adjust_meta", "4.15", func() error { return features.HaveProgramHelper(cebpf.XDP, asm.FnXdpAdjustMeta) }},
		)
	}
	return checks
}

// checkFeatures names the first missing kernel feature the configuration
// needs, wrapping ErrKernelFeature.
func checkFeatures(cfg Config) error {
	return checkFeatureList(requiredFeatures(cfg))
}

func checkFeatureList(checks []featureCheck) error {
	for _, c := range checks {
		err := c.probe()
		if errors.Is(err, cebpf.ErrNotSupported) {
			return fmt.Errorf("%w: %s (Linux %s or later)", ErrKernelFeature, c.what, c.kernel)
		}
		if err != nil {
			return fmt.Errorf("probe for %s: %w", c.what, err)
		}
	}
	return nil
}

// haveCgroupNetnsCookie reports whether cgroup_skb programs may call
// bpf_get_netns_cookie (recent kernels only); without it shim6_cg_egress
// cannot tell network namespaces apart.
func haveCgroupNetnsCookie() bool {
	return features.HaveProgramHelper(cebpf.CGroupSKB, asm.FnGetNetnsCookie) == nil
}
