package testsupport

import (
	"bytes"
	"io"
	"net/http"
)

// SDKHTTPClient returns an HTTP client for aws-sdk-go-v2 clients in tests:
// base's transport (http.DefaultTransport's clone when base is nil), with
// every request body handed to it from memory. The bytes on the wire are
// the same.
//
// It works around a race in the SDK. smithy-go wraps each request body in
// a reader whose WriteTo returns io.EOF once closed, and it closes the
// body as soon as the response headers are in. net/http, after sending
// Content-Length bytes, reads the body once more to check it is done. A
// server that answers at once can make that read come after the close:
// the transport takes the io.EOF for a failed write and closes the
// connection while the response body is still being read, and the call
// fails with "use of closed network connection". The SDK's default
// retryer retries that error, so users see it only as a retried call; the
// tests allow one attempt, and would fail. A *bytes.Reader of the
// transport's own is never closed under it.
func SDKHTTPClient(base *http.Client) *http.Client {
	var rt http.RoundTripper
	if base != nil {
		rt = base.Transport
	}
	if rt == nil {
		rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	c := &http.Client{Transport: bufferedBodies{next: rt}}
	if base != nil {
		c.Timeout = base.Timeout
		c.Jar = base.Jar
		c.CheckRedirect = base.CheckRedirect
	}
	return c
}

// bufferedBodies is SDKHTTPClient's transport.
type bufferedBodies struct{ next http.RoundTripper }

func (b bufferedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return b.next.RoundTrip(req)
	}
	data, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return b.next.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the transport
// beneath, as http.Client.CloseIdleConnections expects.
func (b bufferedBodies) CloseIdleConnections() {
	if c, ok := b.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
