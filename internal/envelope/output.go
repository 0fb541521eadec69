package envelope

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// output is where a command writes: stdout, a file written in place (a
// device, a FIFO, a socket: anything but a regular file, which a rename
// would replace), or a regular file written atomically through a
// temporary file in its directory.
type output struct {
	w       io.Writer
	f       *os.File // the file written, or nil for stdout
	inPlace bool     // f is the target itself
	target  string   // the regular file the temporary file becomes
	mode    os.FileMode
	// uid and gid of the file replaced, or -1
	uid, gid int

	// anonymous: f was opened with O_TMPFILE and has no name until
	// commit links it in; otherwise tmpName is its name.
	anonymous bool

	mu      sync.Mutex
	tmpName string // the temporary name to remove on failure or signal
	done    bool
	stopSig func()
}

// openOut opens the output named by o.Out.
func openOut(o *Options) (*output, error) {
	if o.Out == "" || o.Out == "-" {
		growPipe(o.Stdout)
		return &output{w: o.Stdout}, nil
	}
	if fd, ok := fdName(o.Out); ok {
		// /dev/stdout and the like name a descriptor this process
		// already has: write through it, keeping its offset and
		// O_APPEND, whatever it is open on.
		// A duplicate shares the open file description.
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Out, err)
		}
		f := os.NewFile(uintptr(dup), o.Out)
		growPipe(f)
		return &output{w: f, f: f, inPlace: true}, nil
	}
	st, err := os.Stat(o.Out) // follows symbolic links
	switch {
	case err == nil && !st.Mode().IsRegular():
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", o.Out)
		}
		// A device, FIFO or socket: write it in place; renaming over
		// it would replace it with a regular file.
		f, err := os.OpenFile(o.Out, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		growPipe(f)
		return &output{w: f, f: f, inPlace: true}, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	target, err := resolveLink(o.Out)
	if err != nil {
		return nil, err
	}
	out := &output{target: target, mode: 0o600, uid: -1, gid: -1}
	if st != nil {
		out.mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			out.uid, out.gid = int(sys.Uid), int(sys.Gid)
		}
	}
	out.catchSignals()
	if err := out.createTemp(); err != nil {
		out.stopSig()
		return nil, err
	}
	out.w = &writeback{f: out.f}
	return out, nil
}

// fdName reports whether path names one of this process's file
// descriptors (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N), and
// which.
func fdName(path string) (int, bool) {
	switch path {
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/"} {
		if rest, ok := strings.CutPrefix(path, dir); ok {
			if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// resolveLink returns the file that path names once symbolic links are
// followed, even if that file does not exist yet, so that a link keeps
// pointing at the file written.
func resolveLink(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// useTmpfile is false only in tests of the named temporary file.
var useTmpfile = true

// createTemp opens the temporary file: unnamed (O_TMPFILE) where the
// file system supports it, so that not even SIGKILL leaves it behind,
// else named beside the target.
func (o *output) createTemp() error {
	dir := filepath.Dir(o.target)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(o.mode))
	if err == nil && !useTmpfile {
		unix.Close(fd)
		err = unix.EOPNOTSUPP
	}
	if err == nil {
		o.f = os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
		o.anonymous = true
		return nil
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(o.target)+".partial-*")
	if err != nil {
		// Name the output, not the temporary file.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: %w", o.target, err)
	}
	o.mu.Lock()
	o.f, o.tmpName = f, f.Name()
	o.mu.Unlock()
	return nil
}

// catchSignals removes the temporary file and exits on SIGINT, SIGTERM
// and SIGHUP, until the output is committed or discarded.
func (o *output) catchSignals() {
	ch := make(chan os.Signal, 1)
	stop := make(chan struct{})
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case sig := <-ch:
			o.mu.Lock() // waits out a commit in progress, and holds it off
			if !o.done && o.tmpName != "" {
				os.Remove(o.tmpName)
			}
			fmt.Fprintf(os.Stderr, "kms: %v: output %s not written\n", sig, o.target)
			n := 1
			if s, ok := sig.(syscall.Signal); ok {
				n = 128 + int(s)
			}
			os.Exit(n)
		case <-stop:
		}
	}()
	o.stopSig = func() {
		signal.Stop(ch)
		close(stop)
	}
}

// commit finishes the output: ok makes a regular file visible under its
// name (fsynced, then renamed over the target, then the directory
// fsynced); !ok discards it. Later calls do nothing.
func (o *output) commit(ok bool) error {
	if o.f == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return nil
	}
	o.done = true
	if o.stopSig != nil {
		defer o.stopSig()
	}
	if o.inPlace {
		return o.f.Close()
	}
	err := errors.New("discarded")
	if ok {
		err = o.link()
	}
	if err != nil {
		o.f.Close()
		if o.tmpName != "" {
			os.Remove(o.tmpName)
		}
		if !ok {
			return nil
		}
		return err
	}
	syncDir(o.target)
	return nil
}

// link syncs the temporary file and moves it over the target.
func (o *output) link() error {
	if o.uid >= 0 && (o.uid != os.Geteuid() || o.gid != os.Getegid()) {
		// Keep the replaced file's owner where allowed (root may
		// give it away; others may only change the group).
		if err := o.f.Chown(o.uid, o.gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if err := o.f.Chmod(o.mode); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if o.anonymous {
		// Give the file a temporary name, then rename it over the
		// target: linkat cannot replace an existing file.
		proc := "/proc/self/fd/" + strconv.Itoa(int(o.f.Fd()))
		dir, base := filepath.Dir(o.target), filepath.Base(o.target)
		var err error
		for i := 0; ; i++ {
			name := filepath.Join(dir, fmt.Sprintf(".%s.partial-%d-%d", base, os.Getpid(), i))
			err = unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
			if err == nil {
				o.tmpName = name
				break
			}
			if !errors.Is(err, unix.EEXIST) || i > 100 {
				return fmt.Errorf("linking %s: %w", o.target, err)
			}
		}
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(o.tmpName, o.target); err != nil {
		return err
	}
	o.tmpName = ""
	return nil
}

func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
}

// writeback is the temporary file's writer: every writebackStep bytes it
// asks the kernel to start writing what came before to disk, so that the
// fsync before the rename waits for the last few megabytes only, not the
// whole file.
type writeback struct {
	f       *os.File
	n, sent int64
}

const writebackStep = 8 << 20

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	if w.n-w.sent >= writebackStep {
		// Advisory: an error only means the fsync does all the work.
		unix.SyncFileRange(int(w.f.Fd()), w.sent, w.n-w.sent, unix.SYNC_FILE_RANGE_WRITE)
		w.sent = w.n
	}
	return n, err
}
