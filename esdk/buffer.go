package esdk

import "io"

// verifiedReader returns plaintext only once the whole message has
// verified: fill reads and authenticates all of it into a spool, and the
// plaintext is then returned from there. On any error it returns nothing
// and drops the spool. A non-framed body is always read so
// (nonFramedBody.readBody); a framed message with DecryptOptions.Buffer
// (spoolAll of the streaming decrypter).
type verifiedReader struct {
	fill func() (*spool, error) // called once, on the first read

	sp  *spool // nil until the message has verified
	out []byte
	err error // sticky; io.EOF once everything has been returned
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	for len(v.out) == 0 {
		if v.err != nil {
			return 0, v.err
		}
		v.advance()
	}
	n := copy(p, v.out)
	v.out = v.out[n:]
	return n, nil
}

// WriteTo writes the plaintext to w a chunk of the spool at a time, with
// the guarantees of Read: io.Copy uses it, saving a copy of every byte.
func (v *verifiedReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if len(v.out) > 0 {
			k, err := w.Write(v.out)
			n += int64(k)
			v.out = v.out[k:]
			if err == nil && len(v.out) > 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				return n, err
			}
			continue
		}
		if v.err == io.EOF {
			return n, nil
		}
		if v.err != nil {
			return n, v.err
		}
		v.advance()
	}
}

// advance makes the next chunk of plaintext v.out, spooling the whole
// message first, or sets v.err (io.EOF after the last chunk).
func (v *verifiedReader) advance() {
	if v.sp == nil {
		if v.sp, v.err = v.fill(); v.err != nil {
			return
		}
	}
	if v.out, v.err = v.sp.next(); v.err != nil {
		v.sp.close()
	}
}

// spoolAll reads r, a streaming decrypter, to its io.EOF, which it
// returns only after every frame's tag, the final frame, the signature of
// a signed suite and the end of the message have verified, into a new
// spool in dir (the system's temporary directory if empty), and returns
// the spool ready to read.
func spoolAll(r io.Reader, dir string) (*spool, error) {
	sp, err := newSpool(dir)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, spoolChunk)
	defer clear(buf)
	for {
		// Whole chunks, as the spool takes them, but for the last.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var k int
			k, err = r.Read(buf[n:])
			n += k
		}
		if n > 0 {
			if werr := sp.write(buf[:n]); werr != nil {
				sp.close()
				return nil, werr
			}
		}
		// Only the decrypter's own io.EOF, never wrapped, says that
		// everything verified: an error that wraps io.EOF or
		// io.ErrUnexpectedEOF is a failure like any other.
		if err == io.EOF {
			break
		}
		if err != nil {
			sp.close()
			return nil, err
		}
	}
	if err := sp.rewind(); err != nil {
		sp.close()
		return nil, err
	}
	return sp, nil
}
