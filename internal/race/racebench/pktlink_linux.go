//go:build linux

package racebench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// packetLink emulates netem's "delay 10ms 3ms" where the kernel has no netem: every Ethernet frame,
// in each direction, is held for its own delay drawn uniformly from 10ms +- 3ms, so frames may
// reorder as they do under netem jitter. Unlike the chunk relay (jitterLink), two requests a client
// writes back to back on one connection leave as separate segments and arrive apart.
//
//	root ns: h0 10.213.78.1/24 ──veth── X: h1 ⇄ bridge ⇄ x0 ──veth── Y: x1 10.213.78.2/24 (servers)
//
// Namespace X holds no addresses: two AF_PACKET sockets, bound to h1 and x0, feed a userspace bridge
// that forwards each frame to the other side after its delay. Checksum, segmentation and receive
// offloads are turned off on all four ends (through the ethtool ioctl, as the ethtool command may be
// missing), so the stack computes checksums itself and no frame exceeds the MTU of 1500; a frame
// that still would is dropped and counted.
func packetLink() (*link, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root to create network namespaces")
	}
	pid := os.Getpid()
	nsX, nsY := fmt.Sprintf("tocsinpkx%d", pid), fmt.Sprintf("tocsinpky%d", pid)
	sfx := fmt.Sprint(pid % 100000)
	h0, h1, x0, x1 := "tpkh0"+sfx, "tpkh1"+sfx, "tpkx0"+sfx, "tpkx1"+sfx
	const hostIP, serverIP = "10.213.78.1", "10.213.78.2"
	cleanup := func() {
		_ = exec.Command("ip", "link", "del", h0).Run() // usually gone with nsX already
		_ = exec.Command("ip", "link", "del", x0).Run() // only if a step failed before the move
		_ = exec.Command("ip", "netns", "del", nsX).Run()
		_ = exec.Command("ip", "netns", "del", nsY).Run()
	}
	steps := [][]string{
		{"ip", "netns", "add", nsX},
		{"ip", "netns", "add", nsY},
		{"ip", "link", "add", h0, "mtu", "1500", "type", "veth", "peer", "name", h1, "mtu", "1500"},
		{"ip", "link", "add", x0, "mtu", "1500", "type", "veth", "peer", "name", x1, "mtu", "1500"},
		{"ip", "link", "set", h1, "netns", nsX},
		{"ip", "link", "set", x0, "netns", nsX},
		{"ip", "link", "set", x1, "netns", nsY},
		{"ip", "addr", "add", hostIP + "/24", "dev", h0},
		{"ip", "-n", nsX, "link", "set", h1, "promisc", "on"},
		{"ip", "-n", nsX, "link", "set", x0, "promisc", "on"},
		{"ip", "-n", nsY, "addr", "add", serverIP + "/24", "dev", x1},
	}
	run := func(steps [][]string) error {
		for _, s := range steps {
			if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
			}
		}
		return nil
	}
	if err := run(steps); err != nil {
		cleanup()
		return nil, err
	}
	// Offloads off before the links come up, so no oversized or checksum-less frame is ever made.
	err := disableOffloads(h0)
	if err == nil {
		err = inNamespace(nsX, func() error {
			if err := disableOffloads(h1); err != nil {
				return err
			}
			return disableOffloads(x0)
		})
	}
	if err == nil {
		err = inNamespace(nsY, func() error { return disableOffloads(x1) })
	}
	if err == nil {
		err = run([][]string{
			{"ip", "link", "set", h0, "up"},
			{"ip", "-n", nsX, "link", "set", h1, "up"},
			{"ip", "-n", nsX, "link", "set", x0, "up"},
			{"ip", "-n", nsY, "link", "set", x1, "up"},
			{"ip", "-n", nsY, "link", "set", "lo", "up"},
		})
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	var br *bridge
	err = inNamespace(nsX, func() error {
		var err error
		br, err = newBridge(h1, x0)
		return err
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	var tlsLn, clearLn net.Listener
	err = inNamespace(nsY, func() error {
		var err error
		if tlsLn, err = net.Listen("tcp", serverIP+":0"); err != nil {
			return err
		}
		if clearLn, err = net.Listen("tcp", serverIP+":0"); err != nil {
			tlsLn.Close()
		}
		return err
	})
	if err != nil {
		br.close()
		cleanup()
		return nil, err
	}
	l := startServers("packet jitter 10ms+-3ms (userspace bridge)", tlsLn, clearLn)
	// httptest's certificate names 127.0.0.1, ::1 and example.com, not the server's address here.
	l.tlsCfg = l.tlsCfg.Clone()
	l.tlsCfg.ServerName = "example.com"
	closeServers := l.close
	l.close = func() {
		closeServers()
		br.close()
		cleanup()
		if n := br.oversized.Load() + br.dropped.Load(); n > 0 {
			fmt.Fprintf(os.Stderr, "packet jitter link: %d frames over the MTU and %d over the queue limit were dropped\n", br.oversized.Load(), br.dropped.Load())
		}
	}
	return l, nil
}

// disableOffloads turns off tx checksumming, TSO, GSO and GRO on a device in the calling thread's
// namespace. The first three are required (a frame forwarded by the bridge must carry its checksum
// and fit the MTU); GRO is best effort, as veth only aggregates when it runs NAPI.
func disableOffloads(dev string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	set := func(cmd uint32) error {
		v := struct{ cmd, data uint32 }{cmd, 0}
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data unsafe.Pointer
			_    [16]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = unsafe.Pointer(&v)
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&v)
		if e != 0 {
			return fmt.Errorf("%s: ethtool ioctl %#x: %w", dev, cmd, e)
		}
		return nil
	}
	for _, cmd := range []uint32{unix.ETHTOOL_STSO, unix.ETHTOOL_SGSO, unix.ETHTOOL_STXCSUM} {
		if err := set(cmd); err != nil {
			return err
		}
	}
	_ = set(unix.ETHTOOL_SGRO)
	return nil
}

const (
	maxFrame     = 1500 + 14 // MTU plus the Ethernet header
	bridgeLimit  = 10000     // frames held at once, like netem's queue limit (its default is 1000)
	bridgePollMS = 100       // how often a blocked read looks at whether the bridge closed
)

// bridge forwards frames between two AF_PACKET sockets, each after its own jittered delay.
type bridge struct {
	fds       [2]int
	closed    atomic.Bool
	pumps     sync.WaitGroup // the two readers
	inflight  sync.WaitGroup // frames waiting for their delay
	held      atomic.Int64
	oversized atomic.Int64
	dropped   atomic.Int64
}

// newBridge opens the sockets; call it in the namespace that holds both devices.
func newBridge(a, b string) (*bridge, error) {
	br := &bridge{fds: [2]int{-1, -1}}
	for i, dev := range []string{a, b} {
		fd, err := packetSocket(dev)
		if err != nil {
			for _, f := range br.fds[:i] {
				unix.Close(f)
			}
			return nil, err
		}
		br.fds[i] = fd
	}
	br.pumps.Add(2)
	go br.pump(br.fds[0], br.fds[1])
	go br.pump(br.fds[1], br.fds[0])
	return br, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket opens a raw AF_PACKET socket receiving every frame of dev, with a read timeout.
func packetSocket(dev string) (int, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return -1, err
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s %s: %w", dev, what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	// Frames this socket's own device sends are the other pump's output: never read them back.
	// Older kernels lack the option; the Pkttype check in pump covers them.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval(int64(bridgePollMS * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	return fd, nil
}

// pump reads frames from src and schedules each for dst after 10ms +- 3ms, until the bridge closes.
func (br *bridge) pump(src, dst int) {
	defer br.pumps.Done()
	buf := make([]byte, 1<<16)
	for !br.closed.Load() {
		n, from, err := unix.Recvfrom(src, buf, unix.MSG_TRUNC)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return
		}
		if sa, ok := from.(*unix.SockaddrLinklayer); ok && sa.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n > maxFrame || n > len(buf) {
			br.oversized.Add(1)
			continue
		}
		if br.held.Load() >= bridgeLimit {
			br.dropped.Add(1)
			continue
		}
		frame := append([]byte(nil), buf[:n]...)
		delay := jitterBase - jitterSpread + time.Duration(rand.Int64N(int64(2*jitterSpread)+1))
		br.held.Add(1)
		br.inflight.Add(1)
		time.AfterFunc(delay, func() {
			defer br.inflight.Done()
			defer br.held.Add(-1)
			if !br.closed.Load() {
				_, _ = unix.Write(dst, frame) // a failed write is a lost frame, as on a real link
			}
		})
	}
}

// close stops the pumps, lets held frames expire unsent, and closes the sockets.
func (br *bridge) close() {
	if br.closed.Swap(true) {
		return
	}
	br.pumps.Wait() // each returns within one read timeout
	br.inflight.Wait()
	for _, fd := range br.fds {
		unix.Close(fd)
	}
}
