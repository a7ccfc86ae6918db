//go:build !unix

package main

// lockDir is a no-op where flock(2) does not exist: the development broker
// is run on Unix machines; elsewhere, do not start two on one directory.
func lockDir(string) (func(), error) { return func() {}, nil }
