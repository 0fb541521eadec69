package service

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Work outside a call's bound sees a context that ends only when the
// client goes; the rest of the call gets the time it had left.
func TestOutsideBound(t *testing.T) {
	client, leave := context.WithCancel(context.Background())
	defer leave()
	bounded, cancel := context.WithTimeout(client, time.Hour)
	defer cancel()
	ctx := WithClient(bounded, client)

	var inside context.Context
	rest, done, err := outsideBound(ctx, func(c context.Context) error {
		inside = c
		if _, ok := c.Deadline(); ok {
			return errors.New("work has a deadline")
		}
		return nil
	})
	defer done()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := rest.Deadline(); !ok || time.Until(d) > time.Hour || time.Until(d) < 59*time.Minute {
		t.Errorf("the rest's deadline is %v (%v), want the hour the call had left", d, ok)
	}
	if rest.Value(clientKey{}) != client {
		t.Error("the rest lost the call's values")
	}
	leave()
	<-inside.Done() // the client went: work's context ends
	<-rest.Done()

	// Without a client, work runs on the call's own context.
	plain, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	rest, done2, _ := outsideBound(plain, func(c context.Context) error { inside = c; return nil })
	defer done2()
	if inside != plain || rest != plain {
		t.Error("a call without a client was given another context")
	}
}
