package esdk

import "io"

// verifiedReader returns the plaintext of a framed message only once the
// whole message has verified (DecryptOptions.Buffer): it first reads the
// decrypter to its io.EOF, which comes only after every frame's tag, the
// final frame, the signature of a signed suite and the end of the
// message have verified, into a spool, and then returns the plaintext
// from there. On any error it returns nothing and drops the spool.
type verifiedReader struct {
	r   io.Reader // the streaming decrypter
	dir string    // the spool's directory, or "" for the system's

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
		if v.sp, v.err = v.spoolAll(); v.err != nil {
			return
		}
	}
	if v.out, v.err = v.sp.next(); v.err != nil {
		v.sp.close()
	}
}

// spoolAll reads the decrypter to its end into a new spool and returns
// the spool ready to read.
func (v *verifiedReader) spoolAll() (*spool, error) {
	sp, err := newSpool(v.dir)
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
			k, err = v.r.Read(buf[n:])
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
