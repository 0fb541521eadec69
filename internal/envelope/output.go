package envelope

import (
	"crypto/rand"
	"encoding/hex"
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
	target  string   // the regular file the temporary file becomes, for messages
	dir     int      // the target's directory, open; -1 when none
	base    string   // the target's name in dir
	mode    os.FileMode
	// uid and gid of the file replaced, or -1
	uid, gid int

	// anonymous: f was opened with O_TMPFILE and has no name until
	// commit links it in; otherwise tmpName is its name.
	anonymous bool
	// named makes the temporary file a named one even where O_TMPFILE
	// works (Options.namedTemp).
	named bool
	// wb is w when f is the temporary file, else nil.
	wb *writeback

	mu      sync.Mutex
	tmpName string // the temporary name to remove on failure or signal
	done    bool
	written bool // committed whole under the target's name
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
	if err == nil && !st.Mode().IsRegular() {
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", o.Out)
		}
		// A device, FIFO or socket: write it in place; renaming over
		// it would replace it with a regular file.
		f, err := openInPlace(o.Out)
		if err != nil {
			return nil, err
		}
		growPipe(f)
		return &output{w: f, f: f, inPlace: true}, nil
	}
	out, err := openTarget(o.Out, o.afterFollow)
	if err != nil {
		return nil, err
	}
	out.named = o.namedTemp
	out.catchSignals()
	if err := out.createTemp(); err != nil {
		out.stopSig()
		unix.Close(out.dir)
		return nil, err
	}
	out.wb = &writeback{f: out.f}
	out.w = out.wb
	return out, nil
}

// openTarget opens the directory of the regular file path names, once
// symbolic links are followed, and reads what it finds there under that
// name, so that every later step (the temporary file, the rename) works
// in that directory, relative to its descriptor, whatever becomes of the
// path meanwhile. A link is followed by the kernel, and then the file it
// reached must be the one found in the directory: a link swapped in or
// out between the two is refused, not followed by hand.
//
// In a directory anyone may write with the sticky bit (/tmp), it follows
// no link and replaces no file that belongs to someone other than the
// caller or the directory's owner, as Linux's protected_symlinks and
// protected_regular would: another user's link could point anywhere, and
// another user's file would keep its owner and mode and so be theirs to
// read. A link to a file that does not exist is refused, as cp refuses it.
//
// afterFollow, if not nil, runs after a link was followed to path and
// before path is looked up in its directory (a test's swap of the file).
func openTarget(path string, afterFollow func(path string)) (*output, error) {
	var via *unix.Stat_t // what the last link followed reached
	for range 40 {
		dirPath, base := filepath.Split(path)
		if dirPath == "" {
			dirPath = "."
		}
		if base == "" || base == "." || base == ".." {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		dir, err := unix.Open(dirPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: dirPath, Err: err}
		}
		var dst, st unix.Stat_t
		if err := unix.Fstat(dir, &dst); err != nil {
			unix.Close(dir)
			return nil, &fs.PathError{Op: "stat", Path: dirPath, Err: err}
		}
		shared := dst.Mode&unix.S_ISVTX != 0 && dst.Mode&0o002 != 0
		foreign := func(uid uint32) bool { return uid != uint32(os.Geteuid()) && uid != dst.Uid }
		out := &output{target: path, dir: dir, base: base, mode: 0o600, uid: -1, gid: -1}
		fail := func(err error) (*output, error) { unix.Close(dir); return nil, err }
		err = unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case errors.Is(err, unix.ENOENT):
			if via != nil {
				return fail(fmt.Errorf("%s changed while it was opened", path))
			}
			return out, nil
		case err != nil:
			return fail(&fs.PathError{Op: "stat", Path: path, Err: err})
		case st.Mode&unix.S_IFMT == unix.S_IFREG:
			if via != nil && (via.Dev != st.Dev || via.Ino != st.Ino) {
				return fail(fmt.Errorf("%s changed while it was opened", path))
			}
			if shared && foreign(st.Uid) {
				return fail(fmt.Errorf("%s belongs to another user in a directory others may write: not replacing it", path))
			}
			out.mode = os.FileMode(st.Mode & 0o777)
			out.uid, out.gid = int(st.Uid), int(st.Gid)
			return out, nil
		case st.Mode&unix.S_IFMT != unix.S_IFLNK:
			return fail(fmt.Errorf("%s changed while it was opened", path))
		case shared && foreign(st.Uid):
			return fail(fmt.Errorf("%s is another user's symbolic link in a directory others may write: not following it", path))
		}
		// A link: let the kernel follow it, then go to where it led.
		fd, err := unix.Openat(dir, base, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return fail(fmt.Errorf("%s is a symbolic link to a file that does not exist: not writing through it", path))
		}
		if err != nil {
			return fail(&fs.PathError{Op: "open", Path: path, Err: err})
		}
		var fst unix.Stat_t
		err = unix.Fstat(fd, &fst)
		real, rerr := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		unix.Close(fd)
		unix.Close(dir)
		switch {
		case err != nil:
			return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
		case rerr != nil:
			return nil, rerr
		case fst.Mode&unix.S_IFMT != unix.S_IFREG:
			return nil, fmt.Errorf("%s changed while it was opened", path)
		}
		via, path = &fst, real
		if afterFollow != nil {
			afterFollow(path)
		}
	}
	return nil, fmt.Errorf("%s: too many levels of symbolic links", path)
}

// openInPlace opens for writing path, which leads to something other
// than a regular file or a directory (a FIFO, a device). As openTarget
// does, in a directory anyone may write with the sticky bit (/tmp,
// /dev/shm) it follows no link and writes to nothing that belongs to
// someone other than the caller or the directory's owner: another user's
// FIFO there, or a link of theirs, would send the plaintext to whoever
// they chose to read it. Its links are checked one at a time; then what
// they lead to is opened without being read or written (O_PATH, which
// does not wait for a FIFO's reader), checked in the directory it is in,
// and reopened for writing through that descriptor, so that what is
// written is what was checked.
func openInPlace(path string) (*os.File, error) {
	if err := checkLinks(path); err != nil {
		return nil, err
	}
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	proc := "/proc/self/fd/" + strconv.Itoa(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFREG || t == unix.S_IFDIR {
		return nil, fmt.Errorf("%s changed while it was opened", path)
	}
	// A FIFO or device with a name: the directory that name is in. (A
	// descriptor's pipe or socket, reached through /proc, has none.)
	if real, err := os.Readlink(proc); err == nil && filepath.IsAbs(real) {
		var dst unix.Stat_t
		if err := unix.Stat(filepath.Dir(real), &dst); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: filepath.Dir(real), Err: err}
		}
		if sharedDir(&dst) && foreignIn(&dst, st.Uid) {
			return nil, fmt.Errorf("%s belongs to another user in a directory others may write: not writing to it", path)
		}
	}
	fd, err := unix.Open(proc, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkLinks follows the symbolic links of path one at a time, refusing
// in a directory anyone may write with the sticky bit another user's link
// or another user's file. It stops at a link whose target is not a path
// it can look up (the kernel's links under /proc, such as a descriptor's
// pipe), which the kernel follows.
func checkLinks(path string) error {
	for i := range 40 {
		linkDir, _ := filepath.Split(path) // with its trailing slash
		dirPath := linkDir
		if dirPath == "" {
			dirPath = "."
		}
		var dst, st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if i > 0 {
				return nil
			}
			return &fs.PathError{Op: "stat", Path: path, Err: err}
		}
		if err := unix.Stat(dirPath, &dst); err != nil {
			return &fs.PathError{Op: "stat", Path: dirPath, Err: err}
		}
		link := st.Mode&unix.S_IFMT == unix.S_IFLNK
		switch {
		case sharedDir(&dst) && foreignIn(&dst, st.Uid) && link:
			return fmt.Errorf("%s is another user's symbolic link in a directory others may write: not following it", path)
		case sharedDir(&dst) && foreignIn(&dst, st.Uid):
			return fmt.Errorf("%s belongs to another user in a directory others may write: not writing to it", path)
		case !link:
			return nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			// Not cleaned: ".." goes where the kernel takes it, from
			// the directory the link is in.
			target = linkDir + target
		}
		path = target
	}
	return fmt.Errorf("%s: too many levels of symbolic links", path)
}

// sharedDir reports whether a directory is one anyone may write, with
// the sticky bit (/tmp).
func sharedDir(dir *unix.Stat_t) bool {
	return dir.Mode&unix.S_ISVTX != 0 && dir.Mode&0o002 != 0
}

// foreignIn reports whether uid is neither the caller's nor the owner's
// of dir.
func foreignIn(dir *unix.Stat_t, uid uint32) bool {
	return uid != uint32(os.Geteuid()) && uid != dir.Uid
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

// createTemp opens the temporary file: unnamed (O_TMPFILE) where the
// file system supports it, so that not even SIGKILL leaves it behind,
// else named beside the target.
func (o *output) createTemp() error {
	fd, err := unix.Openat(o.dir, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(o.mode))
	if err == nil && o.named {
		unix.Close(fd)
		err = unix.EOPNOTSUPP
	}
	if err == nil {
		o.f = os.NewFile(uintptr(fd), o.target+" (unnamed)")
		o.anonymous = true
		return nil
	}
	for i := 0; ; i++ {
		name := fmt.Sprintf(".%s.partial-%s", o.base, randomSuffix())
		fd, err = unix.Openat(o.dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			o.mu.Lock()
			o.f, o.tmpName = os.NewFile(uintptr(fd), name), name
			o.mu.Unlock()
			return nil
		}
		if !errors.Is(err, unix.EEXIST) || i > 100 {
			return fmt.Errorf("%s: %w", o.target, err) // the output's name, not the temporary file's
		}
	}
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// removeTemp removes the named temporary file, if there is one.
func (o *output) removeTemp() {
	if o.tmpName != "" {
		unix.Unlinkat(o.dir, o.tmpName, 0)
		o.tmpName = ""
	}
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
			if o.written {
				// The commit the signal waited for finished: the output
				// is whole, and the command ends as it would have.
				fmt.Fprintf(os.Stderr, "kms: %v: output %s was written in full before it\n", sig, o.target)
				o.mu.Unlock()
				return
			}
			if !o.done {
				o.removeTemp()
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
	defer unix.Close(o.dir)
	err := errors.New("discarded")
	if ok {
		err = o.link()
	}
	if err != nil {
		o.f.Close()
		o.removeTemp()
		if !ok {
			return nil
		}
		return err
	}
	unix.Fsync(o.dir)
	o.written = true
	return nil
}

// link syncs the temporary file and moves it over the target.
func (o *output) link() error {
	if err := o.wb.flush(); err != nil {
		return err
	}
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
		for i := 0; ; i++ {
			name := fmt.Sprintf(".%s.partial-%s", o.base, randomSuffix())
			err := unix.Linkat(unix.AT_FDCWD, proc, o.dir, name, unix.AT_SYMLINK_FOLLOW)
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
	if err := unix.Renameat(o.dir, o.tmpName, o.dir, o.base); err != nil {
		return &fs.PathError{Op: "rename", Path: o.target, Err: err}
	}
	o.tmpName = ""
	return nil
}

// writeback is the temporary file's writer: every writebackStep bytes it
// asks the kernel to start writing what came before to disk, so that the
// fsync before the rename waits for the last few megabytes only, not the
// whole file.
//
// It also keeps each write from ending on a page boundary, holding back
// the last holdBack bytes of such a write (a copy) to go first in the
// next one, so that no write but the first starts on a page boundary.
// Writes of whole runs of plaintext at page-aligned offsets, as kms
// decrypt made them, cost three to four times the kernel CPU of the same
// writes starting mid-page (up to 1.4 s against 0.35 s for 1 GiB in
// 256 KiB writes, on a 2-core VM), presumably because the kernel gives
// aligned writes large folios, slow to allocate there, where writes
// starting mid-page get mostly single pages.
type writeback struct {
	f       *os.File
	n, sent int64  // bytes written to f; bytes handed to writeback
	held    []byte // bytes written to w but not yet to f
	heldBuf [holdBack]byte
}

const (
	writebackStep = 8 << 20
	// holdBack is odd, so that it never brings a write back to a page
	// boundary.
	holdBack = 1001
)

func (w *writeback) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	k := 0
	if end := w.n + int64(len(w.held)+len(p)); end%4096 == 0 && len(p) > holdBack {
		k = holdBack
	}
	iov := [][]byte{w.held, p[:len(p)-k]}
	if len(w.held) == 0 {
		iov = iov[1:]
	}
	if err := w.writev(iov); err != nil {
		// What was held was written or failed with the rest; the
		// output is discarded either way.
		w.held = nil
		return 0, err
	}
	w.held = append(w.heldBuf[:0], p[len(p)-k:]...)
	if w.n-w.sent >= writebackStep {
		// Advisory: an error only means the fsync does all the work.
		unix.SyncFileRange(int(w.f.Fd()), w.sent, w.n-w.sent, unix.SYNC_FILE_RANGE_WRITE)
		w.sent = w.n
	}
	return len(p), nil
}

// writev writes all of bufs at w.n.
func (w *writeback) writev(bufs [][]byte) error {
	fd := int(w.f.Fd())
	for len(bufs) > 0 {
		n, err := unix.Pwritev(fd, bufs, w.n)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: w.f.Name(), Err: err}
		}
		if n == 0 {
			return &os.PathError{Op: "write", Path: w.f.Name(), Err: io.ErrShortWrite}
		}
		w.n += int64(n)
		for len(bufs) > 0 && n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		if n > 0 {
			bufs[0] = bufs[0][n:]
		}
	}
	return nil
}

// flush writes what Write held back.
func (w *writeback) flush() error {
	if w == nil || len(w.held) == 0 {
		return nil
	}
	err := w.writev([][]byte{w.held})
	w.held = nil
	return err
}
