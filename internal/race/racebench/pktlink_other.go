//go:build !linux

package racebench

import "errors"

func packetLink() (*link, error) { return nil, errors.New("AF_PACKET bridges are Linux only") }
