package main

import (
	"net"
	"time"
)

// newDialer sends from the client address, the one every server knows.
func newDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, LocalAddr: &net.UDPAddr{IP: clientAddr.AsSlice()}}
}
