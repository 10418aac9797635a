package epoll_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/backendtest"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
)

func newEpoll(tb testing.TB, cfg backend.Config) backend.Backend {
	b, err := epoll.New(cfg)
	require.NoError(tb, err)
	return b
}

func TestConformance(t *testing.T) { backendtest.Run(t, newEpoll) }

func BenchmarkEpoll(b *testing.B) { backendtest.Bench(b, newEpoll) }
