package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// cpuIdleLatency is the kernel's PM QoS interface: while a process holds it
// open with a value written, no CPU enters an idle state whose exit takes
// longer than that many microseconds.
const cpuIdleLatency = "/dev/cpu_dma_latency"

// holdIdleLatency keeps every CPU's idle exit under us microseconds until
// release is called, as cyclictest does by default and tuned's
// latency-performance profile does, so that the latencies measured are the
// software's and not the wake-up of a halted CPU. The bench holds it for
// the latency runs at half the peak only: the peak runs measure throughput
// as before.
//
// Pinning the load generator and the server to different CPUs makes every
// query and every reply wake the other CPU. On a virtual machine whose
// idle CPUs halt (this one's cpuidle driver is haltpoll with polling set
// to 0 ns), that wake-up goes through the hypervisor and takes
// milliseconds now and then: measured here with kernel receive timestamps
// at 2000 queries a second and no other load, dnsmasq's p99 was 2.6–3.6 ms
// with idle CPUs halting and 0.16–0.19 ms with them held at 0 µs. Every
// server is measured the same way, and -idle-latency -1 measures without.
func holdIdleLatency(us int) (release func(), err error) {
	f, err := os.OpenFile(cpuIdleLatency, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("hold CPU idle exits under %d µs (-idle-latency -1 measures without): %w", us, err)
	}
	if err := binary.Write(f, binary.NativeEndian, int32(us)); err != nil {
		f.Close()
		return nil, fmt.Errorf("hold CPU idle exits under %d µs: write %s: %w", us, cpuIdleLatency, err)
	}
	return func() { f.Close() }, nil
}

// idleStates names each idle state of CPU 0 with its exit latency, for the
// table: "POLL 0µs, haltpoll idle 1µs".
func idleStates() string {
	var states []string
	for i := 0; ; i++ {
		dir := fmt.Sprintf("/sys/devices/system/cpu/cpu0/cpuidle/state%d/", i)
		name, err := os.ReadFile(dir + "name")
		if err != nil {
			break
		}
		lat, _ := os.ReadFile(dir + "latency")
		states = append(states, fmt.Sprintf("%s %sµs", strings.TrimSpace(string(name)), strings.TrimSpace(string(lat))))
	}
	if len(states) == 0 {
		return "no cpuidle states listed"
	}
	return strings.Join(states, ", ")
}
