//go:build !linux

package racebench

import "errors"

func netemLink() (*link, error) { return nil, errors.New("network namespaces are Linux only") }
