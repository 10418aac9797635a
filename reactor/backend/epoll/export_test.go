package epoll

// RecvCalls returns how many recv(2) calls the backend's provided-buffer
// receives made, and how many of them found nothing (EAGAIN).
func RecvCalls(b *Backend) (calls, eagain uint64) { return b.calls.recv, b.calls.recvAgain }
