package reactor

import (
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/backend/epoll"
	uringbe "github.com/gyre-io/gyre/reactor/backend/uring"
)

func openUring(cfg backend.Config) (backend.Backend, error) {
	b, err := uringbe.New(cfg)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func openEpoll(cfg backend.Config) (backend.Backend, error) {
	b, err := epoll.New(cfg)
	if err != nil {
		return nil, err
	}
	return b, nil
}
