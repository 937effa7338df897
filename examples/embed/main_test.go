package main

import (
	"os"
	"testing"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup() // the binaries the test built
	os.Exit(code)
}
