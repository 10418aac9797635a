package tcp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind (loops
// not stopped, resolver or helper goroutines still running).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
