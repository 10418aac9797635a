package transports_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/transports"
)

// TestDoneAndLostReasons: Done(cause) is a clean close carrying its cause;
// Lost(cause) an unclean one; neither matches the other's sentinel.
func TestDoneAndLostReasons(t *testing.T) {
	cause := errors.New("loop stopped")
	done := transports.Done(cause)
	require.ErrorIs(t, done, transports.ErrConnectionDone)
	require.ErrorIs(t, done, io.EOF)
	require.ErrorIs(t, done, cause)
	require.NotErrorIs(t, done, transports.ErrConnectionLost)
	require.Equal(t, "gyre: connection done: loop stopped", done.Error())
	require.Equal(t, transports.ErrConnectionDone, transports.Done(nil))

	lost := transports.Lost(cause)
	require.ErrorIs(t, lost, transports.ErrConnectionLost)
	require.ErrorIs(t, lost, cause)
	require.NotErrorIs(t, lost, transports.ErrConnectionDone)
}
