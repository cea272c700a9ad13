//go:build linux

package racebench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netemLink creates a network namespace joined to this one by a veth pair (MTU 1500) with netem delay
// 10ms +- 3ms on both ends, and serves the recorder inside it. Sockets keep the namespace they were
// made in, so the listeners are opened from a thread switched into it and then served as usual.
func netemLink() (*link, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root to create a network namespace")
	}
	ns := fmt.Sprintf("tocsinrb%d", os.Getpid())
	host, peer := "trb0"+fmt.Sprint(os.Getpid()%1000), "trb1"+fmt.Sprint(os.Getpid()%1000)
	const hostIP, peerIP = "10.213.77.1", "10.213.77.2"
	cleanup := func() { _ = exec.Command("ip", "netns", "del", ns).Run() }
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "mtu", "1500", "type", "veth", "peer", "name", peer, "mtu", "1500"},
		{"ip", "link", "set", peer, "netns", ns},
		{"ip", "addr", "add", hostIP + "/30", "dev", host},
		{"ip", "link", "set", host, "up"},
		{"ip", "netns", "exec", ns, "ip", "addr", "add", peerIP + "/30", "dev", peer},
		{"ip", "netns", "exec", ns, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"},
		{"tc", "qdisc", "add", "dev", host, "root", "netem", "delay", "10ms", "3ms"},
		{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", "netem", "delay", "10ms", "3ms"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			cleanup()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	var tlsLn, clearLn net.Listener
	err := inNamespace(ns, func() error {
		var err error
		if tlsLn, err = net.Listen("tcp", peerIP+":0"); err != nil {
			return err
		}
		clearLn, err = net.Listen("tcp", peerIP+":0")
		return err
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	l := startServers("netem 10ms+-3ms", tlsLn, clearLn)
	// httptest's certificate names 127.0.0.1, ::1 and example.com, not the server's address here.
	l.tlsCfg = l.tlsCfg.Clone()
	l.tlsCfg.ServerName = "example.com"
	closeServers := l.close
	l.close = func() { closeServers(); _ = exec.Command("ip", "link", "del", host).Run(); cleanup() }
	return l, nil
}

// inNamespace runs f on a thread switched into the named network namespace, then switches back.
func inNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is in the wrong namespace: never let the runtime reuse it.
		runtime.Goexit()
	}
	return ferr
}
