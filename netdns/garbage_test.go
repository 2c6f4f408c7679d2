package netdns

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// garbage is a deterministic list of bad packets: random bytes of many
// sizes, every truncation of a valid query, a compression loop, a response,
// trailing junk and an oversized message.
func garbage(t *testing.T) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(4, 53))
	var out [][]byte
	for _, n := range []int{0, 1, 2, 11, 12, 13, 17, 64, 300, 511, 512, 513, 1500, 4096, 9000} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		out = append(out, b)
	}
	valid, err := query("web.demo", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(valid); n++ {
		out = append(out, append([]byte(nil), valid[:n]...))
	}
	loop := append([]byte(nil), valid[:12]...)
	loop = append(loop, 0xC0, 0x0C, 0, 1, 0, 1) // name points at itself
	out = append(out, loop)
	resp := append([]byte(nil), valid...)
	resp[2] |= 0x80 // QR: an answer sent to us
	out = append(out, resp)
	out = append(out, append(append([]byte(nil), valid...), 0xde, 0xad, 0xbe, 0xef))
	lies := append([]byte(nil), valid...)
	binary.BigEndian.PutUint16(lies[6:], 0xFFFF) // claims 65535 answers
	out = append(out, lies)
	out = append(out, make([]byte, 60000))
	return out
}

func TestGarbageNeverWedgesTheServer(t *testing.T) {
	s := newTestServer(t, Config{})
	addr := listen(t, s, Listener{Network: "demo_default"})
	packets := garbage(t)

	t.Run("udp", func(t *testing.T) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range packets {
			conn.Write(p) // a 60000-byte datagram is fine on loopback
		}
		wantIPs(t, exchange(t, "udp", addr, query("web.demo", dns.TypeA)), web1, web2, web3)
	})

	t.Run("tcp", func(t *testing.T) {
		idle := dialTCP(t, addr) // a client that connects and says nothing
		defer idle.Close()
		for _, p := range packets {
			sendTCP(t, addr, p, len(p))
		}
		sendTCP(t, addr, []byte{1, 2, 3}, 0xFFFF) // promises more than it sends, then hangs up
		stream := dialTCP(t, addr)                // raw noise with no framing at all
		stream.Write(packets[10])
		stream.Close()
		wantIPs(t, exchange(t, "tcp", addr, query("web.demo", dns.TypeA)), web1, web2, web3)
	})

	wantIPs(t, exchange(t, "udp", addr, query("db", dns.TypeA)), db)
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendTCP writes p with a length prefix of n on a fresh connection, then
// reads whatever comes back for a moment and hangs up.
func sendTCP(t *testing.T, addr string, p []byte, n int) {
	t.Helper()
	c := dialTCP(t, addr)
	defer c.Close()
	if n > 0xFFFF {
		n = 0xFFFF
	}
	c.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
	c.Write(p)
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 512)
	c.Read(buf)
}
