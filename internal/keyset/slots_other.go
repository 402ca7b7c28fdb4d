//go:build !linux

package keyset

func hugePages([]byte) {}
