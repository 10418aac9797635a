package reactor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
)

// Config.CPUs pins the loop's thread (and only it); a CPU number no set can
// hold is ErrBadCPU from New.
func TestConfigCPUsPinsLoopThread(t *testing.T) {
	allowed, err := reactor.AllowedCPUs()
	require.NoError(t, err)
	require.NotEmpty(t, allowed)
	last := allowed[len(allowed)-1]
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		_, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true, CPUs: []int{-1}})
		require.ErrorIs(t, err, reactor.ErrBadCPU)
		_, err = reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true, CPUs: []int{4096}})
		require.ErrorIs(t, err, reactor.ErrBadCPU)

		l, _ := newLoop(t, kind, reactor.Config{CPUs: []int{last}})
		got := make(chan []int, 1)
		require.NoError(t, l.Call(func() {
			cpus, err := reactor.AllowedCPUs()
			require.NoError(t, err)
			got <- cpus
			l.Stop()
		}))
		require.NoError(t, l.Run(context.Background()))
		require.Equal(t, []int{last}, <-got)
		mine, err := reactor.AllowedCPUs()
		require.NoError(t, err)
		require.Equal(t, allowed, mine, "only the loop's thread is pinned")
	})
}
