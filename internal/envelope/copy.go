package envelope

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// blockSize is how much is read from the input at once (three blocks are
// held, 4 MiB blocks left the heap near 30 MB): large reads cost
// fewer system calls and let whole runs of frames be sealed straight from
// the buffer read.
const blockSize = 2 << 20

// readAhead copies src to dst, reading blocks of blockSize in a goroutine
// of its own, so that the next block is read while dst (the encrypter)
// seals the last one. At most three blocks are held.
func readAhead(dst io.Writer, src io.Reader) error {
	type block struct {
		buf []byte
		err error
	}
	full := make(chan block, 1)
	free := make(chan []byte, 3)
	stop := make(chan struct{})
	for range 3 {
		free <- nil
	}
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			if buf == nil {
				buf = make([]byte, blockSize)
			}
			n, err := io.ReadFull(src, buf[:cap(buf)])
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			select {
			case full <- block{buf[:n], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(stop)
	for b := range full {
		if len(b.buf) > 0 {
			if _, err := dst.Write(b.buf); err != nil {
				return err
			}
		}
		if b.err == io.EOF {
			return nil
		}
		if b.err != nil {
			return b.err
		}
		free <- b.buf
	}
	return nil
}

// growPipe enlarges the kernel buffer of r or w if it is a pipe (to 1 MiB,
// the usual limit for unprivileged processes), so that data crosses it in
// fewer, larger steps. Anything else, or a refusal, is left as it is.
func growPipe(f any) {
	file, ok := f.(*os.File)
	if !ok || file == nil {
		return
	}
	st, err := file.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	unix.FcntlInt(file.Fd(), unix.F_SETPIPE_SZ, 1<<20)
}
