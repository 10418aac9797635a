package backend_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
)

func TestConfigLargeRecv(t *testing.T) {
	for _, tc := range []struct {
		cfg   backend.Config
		count int
		ok    bool
	}{
		{backend.Config{}, 64, true},                                    // 1024 × 4 KiB
		{backend.Config{BufferCount: 1024, BufferSize: 1024}, 16, true}, // 1 MiB
		{backend.Config{BufferCount: 512, BufferSize: 3000}, 16, true},  // 1.46 MiB → 23 → 16
		{backend.Config{BufferCount: 256, BufferSize: 1024}, 0, false},  // 4 large buffers: too few
		{backend.Config{BufferCount: 64, BufferSize: 64 << 10}, 0, false},
		{backend.Config{BufferCount: 3, BufferSize: 4096}, 0, false}, // invalid: New says so
		{backend.Config{BufferCount: 1 << 16, BufferSize: 4096}, 0, false},
	} {
		count, ok := tc.cfg.LargeRecv()
		require.Equal(t, tc.ok, ok, "%+v", tc.cfg)
		require.Equal(t, tc.count, count, "%+v", tc.cfg)
	}
}
