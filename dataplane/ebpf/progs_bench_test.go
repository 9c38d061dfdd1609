package ebpf

import (
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
)

// BenchmarkPrograms measures each program's path through BPF_PROG_TEST_RUN,
// one run per syscall (the programs modify the packet, so the kernel's
// repeat would measure a different path after the first run), and reports
// the kernel-measured time of the run as ns/run: the warm-cache cost.
// docs/benchmarks.md also has the cost on live traffic (bpf_stats, dpbench).
//
//	go test -run '^$' -bench Programs -benchtime 20000x ./dataplane/ebpf
func BenchmarkPrograms(b *testing.B) {
	objs := testObjects(b, shim6Config{TriggerPackets: 1 << 30})
	install(b, objs, shimmed)
	tcp := tcpSegment(string(make([]byte, 1380)))
	cases := []struct {
		name string
		prog *cebpf.Program
		in   []byte
	}{
		{"out/rewrite+insert+redirect", objs.Shim6Out, packet(ulidA, ulidB, 6, tcp)},
		{"out/rewrite+insert after hop-by-hop", objs.Shim6Out, packet(ulidA, ulidB, 0, extHeader(6, 1), tcp)},
		{"in/strip", objs.Shim6In, packet(locB, locA, 140, shimHdr(6, tagA), tcp)},
		{"in/strip after hop-by-hop", objs.Shim6In, packet(locB, locA, 0, extHeader(140, 1), shimHdr(6, tagA), tcp)},
		{"in/context pair without header", objs.Shim6In, packet(ulidB, ulidA, 6, tcp)},
		{"in/unrelated (trigger counting)", objs.Shim6In, packet(other, ulidA, 6, tcp)},
		{"in/control message", objs.Shim6In, packet(locB, locA, 140, controlHdr(59))},
		{"in/icmpv6 packet too big translation", objs.Shim6In, icmpError(other, locA, 2, 0, 1400, cat(ipv6Header(locA, locB, 140, 8+len(tcp)), shimHdr(6, tagB), tcp[:1100]))},
		{"xdp/strip", objs.Shim6Xdp, packet(locB, locA, 140, shimHdr(6, tagA), tcp)},
		{"xdp/pass", objs.Shim6Xdp, packet(other, ulidA, 6, tcp)},
		{"cg_egress/context", objs.Shim6CgEgress, packet(ulidA, ulidB, 6, tcp)},
		{"cg_egress/unrelated via lo (not counted)", objs.Shim6CgEgress, packet(ulidA, other, 6, tcp)},
	}
	// Fast reroute: shim6_reroute runs on every packet an uplink sends.
	fr := testObjects(b, shim6Config{TriggerPackets: 1 << 30})
	installFR(b, fr, frPlain, 1)
	frMove(b, fr, frPlain, p22, 1, 1)
	still := frPlain
	still.LocalULID, still.LocalLocator, still.LocalTag = other, other, 5
	installFR(b, fr, still, 1)
	cases = append(cases, []struct {
		name string
		prog *cebpf.Program
		in   []byte
	}{
		{"reroute/unrelated (one lookup)", fr.Shim6Reroute, packet(ulidB, other, 6, tcp)},
		{"reroute/context, not moved", fr.Shim6Reroute, packet(other, ulidB, 6, tcp)},
		{"reroute/moved: rewrite+insert+redirect", fr.Shim6Reroute, packet(ulidA, ulidB, 6, tcpSegment(string(make([]byte, 1372))))},
		{"out/moved pair: rewrite+insert+redirect", fr.Shim6OutEgress, packet(ulidA, ulidB, 6, tcp)},
		{"in/strip, fast reroute on", fr.Shim6In, packet(ulidB, ulidA, 140, shimHdr(6, tagA), tcp)},
	}...)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				_, d, err := c.prog.Benchmark(c.in, 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				total += d
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/run")
		})
	}
}
