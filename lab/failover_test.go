package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

// Baselines without Shim6: MPTCP survives the loss of its first subflow's
// provider with every byte intact; plain TCP between the provider-1
// addresses stalls for good.
func TestFailoverBaselines(t *testing.T) {
	nstest.Require(t)
	for _, tc := range []struct {
		name    string
		cfg     lab.FailoverConfig
		recover bool
	}{
		{"mptcp-active-paced", lab.FailoverConfig{Traffic: lab.Paced, MPTCP: true}, true},
		// Backup with paced traffic: a bulk MPTCP stream resumes in bursts
		// (it keeps scheduling on the dead subflow for a while) and reached
		// "steady" only after 1.2-10 s in the bench, too noisy to assert.
		{"mptcp-backup-paced", lab.FailoverConfig{Traffic: lab.Paced, MPTCP: true, MPTCPBackup: true}, true},
		{"tcp-bulk", lab.FailoverConfig{Traffic: lab.Bulk, Observe: 2 * time.Second}, false},
		// Both directions stuck: Stop must not wait for ever.
		{"tcp-paced", lab.FailoverConfig{Traffic: lab.Paced, Observe: time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := nstest.Topology(t, netns.Config{})
			cfg := tc.cfg
			cfg.Name = tc.name
			cfg.Before = time.Second
			cfg.After = 500 * time.Millisecond
			f, err := lab.RunFailover(context.Background(), topo, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: recovered %v gap %v resumed %v mptcp %v sent %d recv %d verified %v before %.0f after %.0f Mbit/s err %q",
				tc.name, f.Recovered, f.Gap, f.Resumed, f.MPTCP, f.Sent, f.Received, f.Verified, f.ThroughputBefore, f.ThroughputAfter, f.Err)
			if f.Recovered != tc.recover {
				t.Fatalf("recovered = %v, want %v", f.Recovered, tc.recover)
			}
			if cfg.MPTCP && !f.MPTCP {
				t.Fatal("the connection did not use MPTCP")
			}
			if !f.Verified {
				t.Fatal("content mismatch")
			}
			if tc.recover && (f.Sent != f.Received || f.Gap <= 0 || f.Gap > 5*time.Second) {
				t.Fatalf("sent %d received %d gap %v", f.Sent, f.Received, f.Gap)
			}
			if f.ThroughputBefore <= 0 {
				t.Fatalf("no throughput before the failure")
			}
		})
	}
}
