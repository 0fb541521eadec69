package service

import (
	"context"
	"strings"
	"time"
)

// clientKey marks a call's context with its client's (WithClient).
type clientKey struct{}

// WithClient marks ctx, the context of a call bounded by the server's
// call timeout (a deadline), with client, the context of the call's
// request, which ends only when its client goes. The service then keeps
// out of the bound the time the call waits for its turn to make an RSA
// key pair and makes it (outsideBound): that is the server's own work,
// served in turn to every caller, not a dependency that does not answer;
// bounded, a call that waited its turn would be refused after it, its key
// pair made for nothing, and under a steady queue of such calls each
// would be. Without WithClient that time counts.
func WithClient(ctx, client context.Context) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}

// rsaOutsideBound runs work, which makes a key pair of spec, outside
// ctx's bound if spec is an RSA spec (outsideBound); else it runs work
// on ctx, and returns ctx.
func rsaOutsideBound(ctx context.Context, spec string, work func(context.Context) error) (context.Context, context.CancelFunc, error) {
	if !strings.HasPrefix(spec, "RSA_") {
		return ctx, func() {}, work(ctx)
	}
	return outsideBound(ctx, work)
}

// outsideBound runs work with ctx's deadline stopped: work's context ends
// only when ctx's client goes (WithClient), and the context returned,
// which the rest of the call goes on with, has the time ctx had left when
// work began, and ctx's values. A ctx without a client or a deadline is
// work's and the rest's as it is. The caller calls the CancelFunc once
// done.
func outsideBound(ctx context.Context, work func(context.Context) error) (context.Context, context.CancelFunc, error) {
	client, ok := ctx.Value(clientKey{}).(context.Context)
	deadline, bounded := ctx.Deadline()
	if !ok || !bounded {
		return ctx, func() {}, work(ctx)
	}
	if err := ctx.Err(); err != nil {
		return ctx, func() {}, err
	}
	left := time.Until(deadline)
	unbounded, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(client, cancel)
	err := work(unbounded)
	rest, cancelRest := context.WithTimeout(unbounded, left)
	return rest, func() { cancelRest(); stop(); cancel() }, err
}
