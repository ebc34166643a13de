//go:build !unix

package main

import "os"

// tryLock: without flock(2) the data directory is not locked (keycommit's
// servers are built for Unix systems).
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
