package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits of the HTTP server; the defaults of the Options that set them.
const (
	DefaultReadTimeout     = 30 * time.Second // ample for 1 MiB on a slow link; short enough that trickled bodies do not pile up
	DefaultWriteTimeout    = 60 * time.Second // from the end of the request's headers to the end of the answer
	DefaultIdleTimeout     = 2 * time.Minute  // a keep-alive connection between requests
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultCallTimeout bounds a call's work once its body is read: a
	// store that does not answer (a lock held by another client, a
	// database that hangs) is given up on well within the write timeout,
	// so that the client gets an answer it can retry.
	DefaultCallTimeout = 10 * time.Second
	// DefaultAuditSyncInterval is how often --audit-sync=interval fsyncs.
	DefaultAuditSyncInterval = 100 * time.Millisecond
	DefaultMaxConnections    = 4096
	maxHeaderBytes           = 16 << 10        // net/http allows 4 KiB more
	tlsReloadCheck           = 2 * time.Second // how often the certificate files are checked for a change
)

// endpoint is where the server listens, and how.
type endpoint struct {
	ln      net.Listener
	limit   *connLimiter // under ln; its server reports connection states to limit.track
	url     string
	tls     *tls.Config   // nil: plain HTTP
	reload  *certReloader // nil: no certificate files to watch
	caForCL string        // with --dev --tls: the CA file clients trust
}

// checkListen refuses, before anything is opened, a configuration that
// would serve plain HTTP beyond this machine, name half a TLS pair, or
// serve profiles beyond it.
func checkListen(o Options) error {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if o.TLSClientCA != "" && o.TLSCert == "" && !o.DevTLS {
		return fmt.Errorf("--tls-client-ca needs TLS: give --tls-cert and --tls-key")
	}
	if o.DevTLS && !o.Dev {
		return fmt.Errorf("--tls without --dev: give --tls-cert and --tls-key")
	}
	if o.DevTLS && o.TLSCert != "" {
		return fmt.Errorf("--tls makes its own certificate: leave out --tls-cert and --tls-key")
	}
	plain := o.TLSCert == "" && !o.DevTLS
	if plain && !o.Dev && !o.InsecureHTTP && !isLoopback(o.Listen) {
		return errPlainHTTP
	}
	if o.PprofListen != "" && !isLoopback(o.PprofListen) {
		return errPprofOffLoopback
	}
	return nil
}

// openEndpoint listens on o.Listen, with TLS if configured, and at most
// o.MaxConnections open connections: past that, the longest idle makes
// room, or new ones wait in the kernel's queue (connLimiter). It is
// called before the data directory is made, so that a missing or
// mismatched certificate, key or client CA, or an address that cannot be
// bound, refuses the start with nothing written; the bound listener is
// kept for serving, so no other process can take the port meanwhile.
// With DevTLS the certificate is made in the data directory: it is loaded
// later, by devTLS, once the directory exists.
func openEndpoint(o Options) (*endpoint, error) {
	ep := &endpoint{}
	if o.TLSCert != "" {
		if err := ep.loadTLS(o.TLSCert, o.TLSKey, o.TLSClientCA, o.Logger); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	ep.limit = newConnLimiter(ln, o.MaxConnections, time.Now)
	ep.ln = ep.limit
	ep.url = "http://" + ln.Addr().String()
	if ep.tls != nil {
		ep.ln = tls.NewListener(ep.ln, ep.tls)
		ep.url = "https://" + ln.Addr().String()
	}
	return ep, nil
}

// loadTLS loads the certificate, key and client CA that ep serves with.
func (ep *endpoint) loadTLS(certFile, keyFile, clientCA string, log *slog.Logger) error {
	r, err := newCertReloader(certFile, keyFile, clientCA, log)
	if err != nil {
		return err
	}
	ep.tls, ep.reload = tlsConfig(r), r
	return nil
}

// devTLS makes (or reuses) the dev certificate in o.DataDir and serves ep
// with it; a no-op without DevTLS. It runs after the data directory is
// made, as the files live there.
func (ep *endpoint) devTLS(o Options) error {
	if !o.DevTLS {
		return nil
	}
	ca, cert, key, err := ensureDevTLS(o.DataDir, time.Now())
	if err != nil {
		return err
	}
	if err := ep.loadTLS(cert, key, o.TLSClientCA, o.Logger); err != nil {
		return err
	}
	ep.caForCL = ca
	ep.ln = tls.NewListener(ep.limit, ep.tls)
	addr := ep.limit.Addr().String()
	// The dev certificate names localhost and the loopback addresses.
	if tcp, ok := ep.limit.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	ep.url = "https://" + addr
	return nil
}

// httpServer is the HTTP server of handler with the timeouts and limits
// of o; a request answered before its body was read has its connection
// closed (closeUnread).
func httpServer(o Options, handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           closeUnread(handler),
		ReadHeaderTimeout: min(10*time.Second, o.ReadTimeout),
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          httpErrorLog(log),
	}
}
