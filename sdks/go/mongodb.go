package phlask

import (
	"context"
	"errors"
)

func openMongo(ctx context.Context, rawURL string) (backend, error) {
	return nil, errors.New("mongodb: not implemented yet")
}
