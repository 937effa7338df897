package wsproto

import (
	"testing"

	"github.com/ptyhost/ptyhost/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
