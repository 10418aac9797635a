package msghdr

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// pipeFds opens pairs pipes and returns their 2×pairs descriptors.
func pipeFds(t *testing.T, pairs int) []int {
	t.Helper()
	var fds []int
	for range pairs {
		var p [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
		fds = append(fds, p[0], p[1])
	}
	return fds
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// CloseRights closes the descriptors of every SCM_RIGHTS message, skips other
// messages, stops at a malformed one, and allocates nothing.
func TestCloseRights(t *testing.T) {
	fds := pipeFds(t, 2)
	me := unix.Ucred{Pid: 1}
	var control []byte
	control = append(control, unix.UnixRights(fds[0], fds[1])...)
	control = append(control, unix.UnixCredentials(&me)...)
	control = append(control, unix.UnixRights(fds[2])...)
	require.Equal(t, 3, CloseRights(control))
	for _, fd := range fds[:3] {
		require.False(t, isOpen(fd), "fd %d left open", fd)
	}
	require.True(t, isOpen(fds[3]))

	// A message whose length runs past the buffer ends the walk.
	bad := unix.UnixRights(fds[3])
	require.Equal(t, 0, CloseRights(bad[:unix.CmsgLen(4)-1]))
	require.Equal(t, 0, CloseRights(nil))
	require.True(t, isOpen(fds[3]))
	require.Equal(t, 1, CloseRights(bad))
	require.False(t, isOpen(fds[3]))

	creds := unix.UnixCredentials(&me)
	require.Zero(t, testing.AllocsPerRun(100, func() { CloseRights(creds) }))
}
