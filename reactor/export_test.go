package reactor

import "github.com/gyre-io/gyre/reactor/backend"

// SetOpenUring replaces the io_uring constructor of cfg (to inject set-up
// failures).
func SetOpenUring(cfg *Config, f func(backend.Config) (backend.Backend, error)) {
	cfg.openUring = f
}
