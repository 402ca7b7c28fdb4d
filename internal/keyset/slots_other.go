//go:build !linux

package keyset

func hugePages([]byte) {}

func releasePages([]byte) {}
