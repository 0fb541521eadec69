package testsupport

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// sdkBody behaves as smithy-go's request body: once closed, reads and
// WriteTo return io.EOF. Its WriteTo waits for the close, as if the SDK's
// close came just before the transport's last read.
type sdkBody struct {
	r      *bytes.Reader
	mu     sync.Mutex
	closed chan struct{}
	once   sync.Once
	late   bool // the transport read it after the close
}

func (b *sdkBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closed:
		b.late = true
		return 0, io.EOF
	default:
		return b.r.Read(p)
	}
}

func (b *sdkBody) WriteTo(w io.Writer) (int64, error) {
	<-b.closed
	b.mu.Lock()
	b.late = true
	b.mu.Unlock()
	return 0, io.EOF
}

func (b *sdkBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestSDKHTTPClientSurvivesAnEarlyClose: the SDK closes the request body
// as soon as the response headers are in; the response must still read in
// full, over a connection that stays usable.
func TestSDKHTTPClientSurvivesAnEarlyClose(t *testing.T) {
	want := strings.Repeat("x", 64<<10)
	proceed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if string(got) != `{"KeyId":"k"}` || r.ContentLength != int64(len(got)) {
			t.Errorf("server got %q, Content-Length %d", got, r.ContentLength)
		}
		w.Write([]byte(want[:1024]))
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
			w.Write([]byte(want[1024:]))
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	c := SDKHTTPClient(srv.Client())

	body := &sdkBody{r: bytes.NewReader([]byte(`{"KeyId":"k"}`)), closed: make(chan struct{})}
	req, err := http.NewRequest("POST", srv.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(body.r.Len())
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body.Close() // as smithy-go does once Do returns
	close(proceed)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != want {
		t.Fatalf("response: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	body.mu.Lock()
	late := body.late
	body.mu.Unlock()
	if late {
		t.Error("the transport read the body after the SDK closed it")
	}
}
