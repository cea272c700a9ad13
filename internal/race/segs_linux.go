package race

import (
	"net"

	"golang.org/x/sys/unix"
)

// segsOut is how many TCP segments carrying data c has sent so far (TCP_INFO tcpi_data_segs_out), or
// -1. Pure ACKs the kernel sends meanwhile (for a response arriving during the release) do not count.
func segsOut(c *net.TCPConn) int {
	if c == nil {
		return -1
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int(info.Data_segs_out)
		}
	})
	return n
}
