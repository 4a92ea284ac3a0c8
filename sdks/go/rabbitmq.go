package phlask

import (
	"context"
	"errors"
)

func openRabbit(ctx context.Context, rawURL string) (backend, error) {
	return nil, errors.New("amqp: not implemented yet")
}
