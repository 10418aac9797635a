package faulty_test

import (
	"errors"
	"os"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// backends lists the wrapped backends to test: GYRE_BACKEND narrows it.
func backends() []string {
	switch os.Getenv("GYRE_BACKEND") {
	case "uring":
		return []string{"uring"}
	case "epoll":
		return []string{"epoll"}
	}
	return []string{"uring", "epoll"}
}
