package netconn

// Peak is the most bytes c ever held for its readers.
func Peak(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

// Buffered is how many bytes c holds for its readers now.
func Buffered(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rbuf) - c.roff
}

// Queued is how many bytes c's transport holds in its write queue. Loop
// goroutine only.
func Queued(c *Conn) int {
	return c.t.(interface{ Buffered() int }).Buffered()
}

// Calls is how many loop.Calls c's Writes have made.
func Calls(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}
