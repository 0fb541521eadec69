// Package auditcli is `kms audit verify` and `kms audit events`: they read
// the audit trail of an embedded server's data directory (running or
// stopped; the log is append-only and read without locks).
package auditcli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// Options select the trail and the records.
type Options struct {
	DataDir               string
	JSON                  bool
	Since, Until          string
	Key, Principal, Event string
	ErrorsOnly, Follow    bool
	PollInterval          time.Duration // for --follow; default 500 ms
}

// ErrBroken is returned by Verify when the chain has a break; the command
// exits 1.
var ErrBroken = errors.New("the audit trail does not verify")

func logPath(dir string) string { return filepath.Join(dir, "audit.log") }

// Verify walks the chain and prints the result.
func Verify(o Options, out io.Writer) error {
	f, err := os.Open(logPath(o.DataDir))
	if err != nil {
		return err
	}
	defer f.Close()
	n, problem, err := audit.Verify(f)
	if err != nil {
		return err
	}
	if problem != nil {
		fmt.Fprintf(out, "BROKEN at record %d (line %d): %s\n%d records before it verify.\n", problem.Line, problem.Line, problem.Reason, n)
		return ErrBroken
	}
	digests, err := verifyDigests(o.DataDir, f)
	if err != nil {
		var p *audit.Problem
		if errors.As(err, &p) {
			fmt.Fprintf(out, "BROKEN: %s\n", p.Reason)
			return ErrBroken
		}
		return err
	}
	fmt.Fprintf(out, "OK: %d records, hash chain intact; %d signed digests verify.\n", n, digests)
	return nil
}

// verifyDigests checks the signed digests beside the log, if any.
func verifyDigests(dir string, log *os.File) (int, error) {
	pubPEM, err := os.ReadFile(filepath.Join(dir, "audit.pub"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		return 0, errors.New("audit.pub is not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		return 0, errors.New("audit.pub is not an Ed25519 public key")
	}
	dg, err := os.Open(filepath.Join(dir, "audit-digests.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer dg.Close()
	if _, err := log.Seek(0, 0); err != nil {
		return 0, err
	}
	hashes, records, err := audit.Hashes(log)
	if err != nil {
		return 0, err
	}
	n, problem, err := audit.VerifyDigests(dg, pub, hashes, records)
	if err != nil {
		return n, err
	}
	if problem != nil {
		return n, problem
	}
	return n, nil
}

type filter struct {
	since, until time.Time
	o            Options
}

func newFilter(o Options) (*filter, error) {
	f := &filter{o: o}
	var err error
	if o.Since != "" {
		if f.since, err = time.Parse(time.RFC3339, o.Since); err != nil {
			return nil, fmt.Errorf("--since: %w", err)
		}
	}
	if o.Until != "" {
		if f.until, err = time.Parse(time.RFC3339, o.Until); err != nil {
			return nil, fmt.Errorf("--until: %w", err)
		}
	}
	return f, nil
}

func (f *filter) keep(r *audit.Record) bool {
	t, _ := time.Parse(audit.TimeFormat, r.EventTime)
	switch {
	case !f.since.IsZero() && t.Before(f.since), !f.until.IsZero() && !t.Before(f.until):
		return false
	case f.o.Event != "" && r.EventName != f.o.Event:
		return false
	case f.o.Principal != "" && r.UserIdentity.ARN != f.o.Principal:
		return false
	case f.o.ErrorsOnly && r.ErrorCode == "":
		return false
	case f.o.Key != "":
		for _, res := range r.Resources {
			if res.ARN == f.o.Key || strings.HasSuffix(res.ARN, "/"+f.o.Key) {
				return true
			}
		}
		return false
	}
	return true
}

// Events prints the selected records.
func Events(ctx context.Context, o Options, out io.Writer) error {
	flt, err := newFilter(o)
	if err != nil {
		return err
	}
	f, err := os.Open(logPath(o.DataDir))
	if err != nil {
		return err
	}
	defer f.Close()
	var tw *tabwriter.Writer
	if !o.JSON {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tPRINCIPAL\tKEY\tSOURCE IP\tERROR")
	}
	print := func(r *audit.Record, raw json.RawMessage) error {
		if !flt.keep(r) {
			return nil
		}
		if o.JSON {
			_, err := fmt.Fprintf(out, "%s\n", raw)
			return err
		}
		key := ""
		if len(r.Resources) > 0 {
			key = r.Resources[0].ARN[strings.LastIndexByte(r.Resources[0].ARN, '/')+1:]
		}
		principal := r.UserIdentity.ARN
		if principal == "" {
			principal = "(" + r.UserIdentity.Type + " " + r.UserIdentity.AccessKeyID + ")"
		}
		_, err := fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Sequence, r.EventTime, r.EventName, principal, key, r.SourceIPAddress, r.ErrorCode)
		return err
	}
	br := bufio.NewReader(f)
	poll := o.PollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	var partial []byte
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			partial = append(partial, b...)
			if tw != nil {
				tw.Flush()
			}
			if !o.Follow {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(poll):
			}
			continue
		}
		if err != nil {
			return err
		}
		b = append(partial, b...)
		partial = nil
		if err := audit.Read(strings.NewReader(string(b)), print); err != nil {
			return err
		}
		if o.Follow && tw != nil {
			tw.Flush()
		}
	}
}
