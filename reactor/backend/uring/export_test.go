package uring

import (
	"github.com/gyre-io/gyre/reactor/backend"
	ring "github.com/gyre-io/gyre/uring"
)

// Options forces fallback paths for tests.
type Options struct {
	NoMultishot bool
	NoBufRing   bool
	NoSendZC    bool
	Setup       ring.SetupMode
	ParkAll     bool // every op goes through the pending list
}

// NewWithOptions is New with fallbacks forced.
func NewWithOptions(cfg backend.Config, o Options) (*Backend, error) {
	return newBackend(cfg, options{noMultishot: o.NoMultishot, noBufRing: o.NoBufRing, noSendZC: o.NoSendZC, setup: o.Setup, parkAll: o.ParkAll})
}

// Inflight is the number of ops without their final completion.
func (b *Backend) Inflight() int { return b.inflight }

// Tracked is the number of ops in the completion-work table.
func (b *Backend) Tracked() int { return len(b.track) }
