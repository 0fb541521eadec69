// Package atomicfile writes small files so that a crash leaves either the
// whole new content or none of it: through a temporary file beside the
// target, fsynced before it takes the target's name, and the directory
// fsynced after.
//
// Limits: Write and CreateOnce take the whole content in memory, which
// suits keys, credentials and similar files of a few kilobytes;
// CreateOnceFrom and Stage copy it from a reader, for files of any size.
package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with data (mode applies to a new file).
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, bytes.NewReader(data), mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(path)
	return nil
}

// CreateOnce creates path holding data unless path exists, and reports
// whether it did. Of several processes racing to create the same file,
// exactly one does (the file is linked into place, which fails if it
// exists); the others find it complete.
func CreateOnce(path string, data []byte, mode os.FileMode) (bool, error) {
	return CreateOnceFrom(path, bytes.NewReader(data), mode)
}

// CreateOnceFrom is CreateOnce with the content read from r to its end. An
// error reading r leaves no file behind.
func CreateOnceFrom(path string, r io.Reader, mode os.FileMode) (bool, error) {
	s, err := Stage(path, r, mode)
	if err != nil {
		return false, err
	}
	return s.Link()
}

// Staged is a file written whole under a temporary name beside its path,
// which takes the path only when Link is called: for a caller that learns
// whether the content may be used only after it has copied it, as a
// restore does, whose backup's tag comes at the end.
type Staged struct {
	path, tmp string
}

// Stage writes what r holds to a new temporary file beside path (a dot
// file, which a crash may leave behind), fsynced. An error reading r
// leaves no file behind.
func Stage(path string, r io.Reader, mode os.FileMode) (*Staged, error) {
	tmp, err := writeTemp(path, r, mode)
	if err != nil {
		return nil, err
	}
	return &Staged{path: path, tmp: tmp}, nil
}

// Link gives the staged file its path unless the path exists, as
// CreateOnce does, and reports whether it did. The temporary name is
// removed either way.
func (s *Staged) Link() (bool, error) {
	defer s.Remove()
	if err := os.Link(s.tmp, s.path); errors.Is(err, os.ErrExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	syncDir(s.path)
	return true, nil
}

// Remove removes the temporary name: after Link, the path keeps the
// file; without, the file is gone.
func (s *Staged) Remove() {
	os.Remove(s.tmp)
}

// writeTemp writes what r holds to a new temporary file beside path and
// fsyncs it.
func writeTemp(path string, r io.Reader, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
}
