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
