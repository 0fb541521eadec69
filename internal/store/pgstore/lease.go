package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/store"
)

const (
	// leaseCheck is how often an idle lease pings its connection, so that a
	// connection that died silently (a half-open TCP connection) is noticed.
	leaseCheck = 5 * time.Second
	// leasePingTimeout bounds that ping and the unlock in Close.
	leasePingTimeout = 5 * time.Second
	// leaseIdleTimeout is how long PostgreSQL keeps a lease's connection
	// (and so its lock) that nothing was sent on: a holder that stops
	// (SIGSTOP, a machine that froze or lost power or its network) stops
	// pinging, and its lease goes to another node after this, not after
	// the kernel's TCP keepalive (two hours by default).
	leaseIdleTimeout = 3 * leaseCheck
)

// leaseSession is sent on a lease's connection once it holds the lock:
// the server ends the session when it has been idle leaseIdleTimeout
// (PostgreSQL 14 and later), and probes a silent client's TCP connection
// within about 25 s.
var leaseSession = fmt.Sprintf(`SET idle_session_timeout = %d; SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3`,
	leaseIdleTimeout.Milliseconds())

// A Lease is the right to do one named piece of work for the whole cluster:
// while it is held, no other TryLead for the same name on the same database
// succeeds, in this process or another.
//
// It is a session-level PostgreSQL advisory lock held on a connection of its
// own. PostgreSQL releases the lock when that connection ends, so a Lease
// is lost when its connection breaks; Lost tells the holder, who must then
// stop the work. A break is noticed as soon as the socket reports it, or
// within about 10 seconds by a periodic ping.
type Lease struct {
	conn    *pgx.Conn
	key     int64
	unlock  string // the statement that releases the lock
	lost    chan struct{}
	endLost sync.Once
	stop    context.CancelFunc
	checked chan struct{} // closed when check returns
	closed  sync.Once
}

// TryLead takes the lease called name if no one holds it, without waiting.
// ok is false, with a nil error, when another holder has it. Each call
// opens a connection, kept for as long as the Lease is held.
func (s *Store) TryLead(ctx context.Context, name string) (lease *Lease, ok bool, err error) {
	return s.tryLease(ctx, name, false)
}

// TryShare takes the lease called name shared, without waiting: any number
// of holders may share it, and while one does, TryLead of the same name
// fails (and while TryLead holds it, TryShare fails). A serving node
// shares the lease "serving"; what must not run beside a serving node
// (kms root-key rotate, kms migrate from the database) leads it.
func (s *Store) TryShare(ctx context.Context, name string) (lease *Lease, ok bool, err error) {
	return s.tryLease(ctx, name, true)
}

func (s *Store) tryLease(ctx context.Context, name string, shared bool) (lease *Lease, ok bool, err error) {
	if s.closed.Load() {
		return nil, false, store.ErrClosed
	}
	conn, err := pgx.ConnectConfig(ctx, s.connConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: lease %q: %w", name, err)
	}
	key := leaseKey(name)
	lock, unlock := `SELECT pg_try_advisory_lock($1)`, `SELECT pg_advisory_unlock($1)`
	if shared {
		lock, unlock = `SELECT pg_try_advisory_lock_shared($1)`, `SELECT pg_advisory_unlock_shared($1)`
	}
	if err := conn.QueryRow(ctx, lock, key).Scan(&ok); err != nil || !ok {
		closeConn(conn)
		if err != nil {
			return nil, false, fmt.Errorf("pgstore: lease %q: %w", name, err)
		}
		return nil, false, nil
	}
	// On a server older than PostgreSQL 14 (no idle_session_timeout) this
	// fails and changes nothing: the lease holds, but a holder that stops
	// keeps it until its connection breaks.
	conn.Exec(ctx, leaseSession)
	checkCtx, stop := context.WithCancel(context.Background())
	l := &Lease{conn: conn, key: key, unlock: unlock, lost: make(chan struct{}), stop: stop, checked: make(chan struct{})}
	go l.check(checkCtx)
	return l, true, nil
}

// ServingLease is the lease every server shares (TryShare) for as long as
// it runs on the store.
const ServingLease = "serving"

// ErrServing is returned by HoldStopped when a server runs on the store.
var ErrServing = errors.New("a server is running on the key store")

// HoldStopped keeps servers from starting on the store until release is
// called, and refuses with ErrServing while one runs: it leads the
// serving lease every running server shares, and the maintenance lease
// (which a server of a version before the serving lease holds while it
// leads). For what must not run beside a server: a root key rotation, a
// migration from the store.
func (s *Store) HoldStopped(ctx context.Context) (release func(), err error) {
	serving, ok, err := s.TryLead(ctx, ServingLease)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: a node shares the cluster's serving lease; stop every node first", ErrServing)
	}
	maint, ok, err := s.TryLead(ctx, "maintenance")
	if err != nil || !ok {
		serving.Close()
		if err == nil {
			err = fmt.Errorf("%w: a node holds the cluster's maintenance lease; stop every node first", ErrServing)
		}
		return nil, err
	}
	return func() { maint.Close(); serving.Close() }, nil
}

// leaseKey maps a lease name to an advisory lock key.
func leaseKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("openkms lease\x00" + name))
	return int64(h.Sum64())
}

// Lost returns a channel that is closed when the lease has ended: its
// connection broke, or Close was called.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Close releases the lease and its connection. It may be called more than
// once, and after the lease was lost.
func (l *Lease) Close() error {
	var err error
	l.closed.Do(func() {
		l.stop()
		<-l.checked
		select {
		case <-l.lost:
			// The connection is gone and PostgreSQL has released the lock.
		default:
			l.endLost.Do(func() { close(l.lost) })
			ctx, cancel := context.WithTimeout(context.Background(), leasePingTimeout)
			defer cancel()
			var released bool
			err = l.conn.QueryRow(ctx, l.unlock, l.key).Scan(&released)
			if err == nil && !released {
				err = errors.New("pgstore: lease was not held at release")
			}
		}
		closeConn(l.conn)
	})
	return err
}

// check waits on the idle connection for it to break, pinging it every
// leaseCheck, until ctx is done. It closes lost if the connection breaks.
func (l *Lease) check(ctx context.Context) {
	defer close(l.checked)
	for {
		waitCtx, cancel := context.WithTimeout(ctx, leaseCheck)
		// Nothing is LISTENed on this connection: the wait returns only
		// when the connection fails or waitCtx is done.
		_, err := l.conn.WaitForNotification(waitCtx)
		timedOut := waitCtx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if timedOut {
			pingCtx, cancel := context.WithTimeout(ctx, leasePingTimeout)
			err = l.conn.Ping(pingCtx)
			cancel()
			if ctx.Err() != nil {
				return
			}
		}
		if err != nil {
			l.endLost.Do(func() { close(l.lost) })
			return
		}
	}
}

// closeConn closes a dedicated connection, politely but without waiting
// long for a server that does not answer.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
