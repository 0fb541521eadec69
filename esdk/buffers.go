package esdk

// buffers keeps a few batch buffers for reuse, so that a stream does not
// allocate one for each batch of frames. It keeps at most keep of them
// (a stream has that many batches in flight at the most). Not safe for
// concurrent use.
type buffers struct {
	free [][]byte
	keep int
}

// get returns an empty buffer with room for size bytes: a kept one if one
// is large enough, else a new one.
func (b *buffers) get(size int) []byte {
	for i, buf := range b.free {
		if cap(buf) >= size {
			b.free[i] = b.free[len(b.free)-1]
			b.free = b.free[:len(b.free)-1]
			return buf[:0]
		}
	}
	return make([]byte, 0, size)
}

// put keeps buf for a later get, unless enough are kept already.
func (b *buffers) put(buf []byte) {
	if len(b.free) < b.keep {
		b.free = append(b.free, buf[:0])
	}
}
