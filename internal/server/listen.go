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

// openEndpoint listens on o.Listen, with TLS if configured (making the dev
// certificate first with DevTLS), and at most o.MaxConnections open
// connections: past that, the longest idle makes room, or new ones wait in
// the kernel's queue (connLimiter).
func openEndpoint(o Options) (*endpoint, error) {
	ep := &endpoint{}
	certFile, keyFile := o.TLSCert, o.TLSKey
	if o.DevTLS {
		ca, cert, key, err := ensureDevTLS(o.DataDir, time.Now())
		if err != nil {
			return nil, err
		}
		certFile, keyFile, ep.caForCL = cert, key, ca
	}
	if certFile != "" {
		r, err := newCertReloader(certFile, keyFile, o.TLSClientCA, o.Logger)
		if err != nil {
			return nil, err
		}
		ep.tls, ep.reload = tlsConfig(r), r
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	ep.limit = newConnLimiter(ln, o.MaxConnections, time.Now)
	ep.ln = ep.limit
	scheme := "http"
	if ep.tls != nil {
		ep.ln = tls.NewListener(ep.ln, ep.tls)
		scheme = "https"
	}
	addr := ln.Addr().String()
	if o.DevTLS {
		// The dev certificate names localhost and the loopback addresses.
		if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
		}
	}
	ep.url = scheme + "://" + addr
	return ep, nil
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
