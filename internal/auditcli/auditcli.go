// Package auditcli is `kms audit verify`, `kms audit events` and `kms
// audit export`: they read the audit trail (docs/audit.md) from an
// embedded server's data directory (running or stopped; its segments are
// append-only and read without locks, and archived segments are read from
// the directories given), from the PostgreSQL database of a cluster,
// where each server process writes a chain of its own, or, but for
// export, from a running server over its API.
package auditcli

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/openkms/kms/internal/audit"
)

// Options select the trail and the records.
type Options struct {
	DataDir string // an embedded server's data directory
	// ArchiveDirs hold segments of DataDir's trail moved out of it, read
	// with those it still holds as one trail.
	ArchiveDirs []string
	// Archive says DataDir is an archive: a copy of a trail's first
	// segments, whose later records are elsewhere.
	Archive bool
	// Live says a server runs on DataDir: its kms.db, found locked, is
	// then taken to be held by that server, and the high-water mark there
	// is left unchecked (a note says so). Without it, a locked kms.db
	// fails verification, as anyone who can open the file can lock it.
	Live    bool
	Storage string // or the DSN of a cluster's PostgreSQL database

	// Or the URL of a running server, asked with the credentials of the
	// AWS configuration (of Profile if set) and signed for Region if set.
	Endpoint, Profile, Region string

	// PublicKey is a PEM file with the key that must have signed the
	// digests, instead of the one kept beside the trail.
	PublicKey string
	// ExpectAtLeast, if not 0, is how many records the trail must hold at
	// least (all chains together): a count noted elsewhere, which cutting
	// off the newest records with their digests and mark cannot fool.
	ExpectAtLeast uint64

	JSON                  bool
	Output                string // append JSON lines to this file instead of printing
	Since, Until          string
	Key, Principal, Event string
	ErrorsOnly, Follow    bool
	PollInterval          time.Duration // for --follow; default 500 ms, 2 s with Endpoint

	// throttleWait, if not 0, bounds the first wait before a call to
	// Endpoint that was throttled is made again (tests shorten it).
	throttleWait time.Duration
}

// ErrBroken is returned by Verify when a chain has a break; the command
// exits 1.
var ErrBroken = errors.New("the audit trail does not verify")

// Verify walks every chain and its digests and prints the result.
func Verify(ctx context.Context, o Options, out io.Writer) error {
	var pub ed25519.PublicKey
	if o.PublicKey != "" {
		b, err := os.ReadFile(o.PublicKey)
		if err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
		if pub, err = audit.ParsePublicKey(b); err != nil {
			return fmt.Errorf("--public-key %s: %w", o.PublicKey, err)
		}
	}
	src, err := openSource(ctx, o)
	if err != nil {
		return err
	}
	defer src.close()
	reports, err := src.verify(ctx, pub)
	if err != nil {
		return err
	}
	if o.ExpectAtLeast > 0 && len(reports) > 0 {
		var total uint64
		for _, r := range reports {
			total += r.Total
		}
		if total < o.ExpectAtLeast {
			p := &audit.Problem{Digest: true, Reason: fmt.Sprintf("the trail holds %d records, fewer than the %d expected (--expect-at-least): records were cut off", total, o.ExpectAtLeast)}
			if r := &reports[0]; r.Problem == nil {
				r.Problem = p
			} else {
				r.Later = append(r.Later, p)
			}
		}
	}
	if !src.chains() {
		err = printReport(out, reports[0])
	} else {
		err = printChainReports(out, reports)
	}
	for _, r := range reports {
		for _, n := range r.Notes {
			fmt.Fprintf(out, "note: %s\n", cell(n))
		}
	}
	return err
}

// printReport prints the report of a data directory's one chain.
func printReport(out io.Writer, r audit.Report) error {
	switch p := r.Problem; {
	case p == nil:
		fmt.Fprintf(out, "OK: %d records, hash chain intact; %d signed digests verify.\n", r.Records, r.Digests)
		return nil
	case p.Digest || p.Line == 0:
		fmt.Fprintf(out, "BROKEN: %s\n", cell(p.Reason))
	default:
		fmt.Fprintf(out, "BROKEN at record %d (line %d): %s\n%d records before it verify.\n", problemRecord(p), p.Line, cell(p.Reason), r.Records)
	}
	printLater(out, "", r.Later, r.More)
	printIntact(out, r)
	return ErrBroken
}

// problemRecord is the number of the record a break of a log file's
// chain is at: the one expected there, or, where that is not known, its
// line.
func problemRecord(p *audit.Problem) uint64 {
	if p.Seq != 0 {
		return p.Seq
	}
	return uint64(p.Line)
}

// printIntact says, after the breaks of a log file, what still verifies:
// the records that chain intact after the chain's last break, and the
// signed digests that match the records they name. A digest names its
// record by sequence number, wherever the record stands, so after one
// record removed or inserted the later digests still match.
func printIntact(out io.Writer, r audit.Report) {
	switch {
	case r.Intact == 0:
		fmt.Fprint(out, "No record chains intact after the last break of the chain")
	case r.Intact == r.Records:
		fmt.Fprintf(out, "Records %d to %d chain intact", r.IntactFirst, r.IntactLast)
	default:
		fmt.Fprintf(out, "After the last break of the chain, records %d to %d chain intact", r.IntactFirst, r.IntactLast)
	}
	if r.DigestsRead > 0 {
		fmt.Fprintf(out, "; %d of %d signed digests match their records", r.Digests, r.DigestsRead)
	}
	fmt.Fprintln(out, ".")
}

// maxLater is how many breaks after the first are printed: one missing
// segment breaks every digest after it, and the first break is the one
// to act on.
const maxLater = 10

// printLater prints the breaks after the first, each on a line, at most
// maxLater of them and then how many more there are, counting more, the
// breaks found and not kept.
func printLater(out io.Writer, prefix string, later []*audit.Problem, more uint64) {
	if len(later) > maxLater || more > 0 {
		if len(later) > maxLater {
			more += uint64(len(later) - maxLater)
			later = later[:maxLater]
		}
		defer fmt.Fprintf(out, "%s... and %d more breaks after these.\n", prefix, more)
	}
	for _, p := range later {
		if p.Line == 0 {
			fmt.Fprintf(out, "%salso BROKEN: %s\n", prefix, cell(p.Reason))
		} else if p.Digest {
			fmt.Fprintf(out, "%salso BROKEN at digest %d: %s\n", prefix, p.Line, cell(p.Reason))
		} else if p.Seq != 0 && p.Seq != uint64(p.Line) {
			fmt.Fprintf(out, "%salso BROKEN at record %d (line %d): %s\n", prefix, p.Seq, p.Line, cell(p.Reason))
		} else {
			fmt.Fprintf(out, "%salso BROKEN at record %d: %s\n", prefix, p.Line, cell(p.Reason))
		}
	}
}

// printChainReports prints a line per chain and a summary.
func printChainReports(out io.Writer, reports []audit.Report) error {
	var records uint64
	digests, broken := 0, 0
	for _, r := range reports {
		records += r.Records
		digests += r.Digests
		switch p := r.Problem; {
		case p == nil:
			fmt.Fprintf(out, "chain %s: OK: %d records, hash chain intact; %d signed digests verify.\n", cell(r.Chain), r.Records, r.Digests)
		case p.Line == 0:
			fmt.Fprintf(out, "chain %s: BROKEN: %s\n", cell(r.Chain), cell(p.Reason))
		case p.Digest:
			fmt.Fprintf(out, "chain %s: BROKEN at the digest of record %d: %s\n", cell(r.Chain), p.Line, cell(p.Reason))
		default:
			fmt.Fprintf(out, "chain %s: BROKEN at record %d: %s; %d records before it verify.\n", cell(r.Chain), p.Line, cell(p.Reason), r.Records)
		}
		if r.Problem != nil {
			printLater(out, "chain "+cell(r.Chain)+": ", r.Later, r.More)
			broken++
		}
	}
	if broken > 0 {
		fmt.Fprintf(out, "BROKEN: %d of %d chains do not verify.\n", broken, len(reports))
		return ErrBroken
	}
	fmt.Fprintf(out, "OK: %d chains, %d records, hash chains intact; %d signed digests verify.\n", len(reports), records, digests)
	return nil
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
	if strings.HasPrefix(o.Key, "alias/") || strings.Contains(o.Key, ":alias/") {
		// Records name the key a call resolved, not the alias it was
		// asked through, which may point at another key by now.
		return nil, fmt.Errorf("--key %s is an alias: give the key id or key ARN (aws kms describe-key --key-id %s shows the key it names now)", o.Key, o.Key)
	}
	// --since is included and --until excluded: a range whose end is not
	// after its start holds no record, most likely the two swapped.
	if o.Since != "" && o.Until != "" && !f.until.After(f.since) {
		return nil, fmt.Errorf("--since %s is not before --until %s: the range holds no time", o.Since, o.Until)
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

// Events prints the selected records: as a table (each field escaped as
// cell escapes it), or as JSON lines (the event objects, as stored) with
// o.JSON, or appends JSON lines to o.Output. With
// o.Follow it keeps reading new records until ctx is done.
func Events(ctx context.Context, o Options, stdout io.Writer) error {
	flt, err := newFilter(o)
	if err != nil {
		return err
	}
	if err := refuseOutputInTrail(o, "--output", true); err != nil {
		return err
	}
	src, err := openSource(ctx, o)
	if err != nil {
		return err
	}
	defer src.close()
	out, asJSON := stdout, o.JSON
	var file *os.File
	if o.Output != "" {
		if file, err = openOutput(o.Output); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer file.Close()
		out, asJSON = file, true
	}
	p := newPrinter(out, asJSON, src.chains())
	poll := o.PollInterval
	switch {
	case poll > 0:
	case o.Endpoint != "":
		// Each poll of a server is a call it records.
		poll = 2 * time.Second
	default:
		poll = 500 * time.Millisecond
	}
	for {
		err := src.next(ctx, flt.keep, p.print)
		if err != nil && !(o.Follow && ctx.Err() != nil) {
			return err
		}
		if err := p.flush(); err != nil {
			return err
		}
		if !o.Follow || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
	if file != nil {
		return file.Close()
	}
	return nil
}

// printer writes records as a table or as JSON lines.
type printer struct {
	w      *bufio.Writer
	tw     *tabwriter.Writer // nil for JSON lines
	chains bool
}

func newPrinter(out io.Writer, asJSON, chains bool) *printer {
	p := &printer{w: bufio.NewWriter(out), chains: chains}
	if !asJSON {
		p.tw = tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		if chains {
			fmt.Fprint(p.tw, "CHAIN\t")
		}
		fmt.Fprintln(p.tw, "SEQ\tTIME\tEVENT\tPRINCIPAL\tKEY\tSOURCE IP\tERROR")
	}
	return p
}

func (p *printer) print(r record) error {
	if p.tw == nil {
		p.w.Write(r.event)
		return p.w.WriteByte('\n')
	}
	rec := r.rec
	key := ""
	if len(rec.Resources) > 0 {
		key = rec.Resources[0].ARN[strings.LastIndexByte(rec.Resources[0].ARN, '/')+1:]
	}
	principal := cell(rec.UserIdentity.ARN)
	if principal == "" && rec.UserIdentity.InvokedBy != "" {
		principal = cell(rec.UserIdentity.InvokedBy) // a service event
	}
	if principal == "" {
		principal = "(" + cell(rec.UserIdentity.Type) + " " + cell(rec.UserIdentity.AccessKeyID) + ")"
	}
	name := cell(rec.EventName)
	if rec.Recovered() {
		name += " (recovered)" // its change was made, its call not answered
	}
	if p.chains {
		fmt.Fprintf(p.tw, "%s\t", cell(r.chain))
	}
	_, err := fmt.Fprintf(p.tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", rec.Sequence, cell(rec.EventTime), name, principal, cell(key), cell(rec.SourceIPAddress), cell(rec.ErrorCode))
	return err
}

// cell returns a field of a record as the table prints it: as it is, or,
// if it holds invalid UTF-8 or a rune that is not printable — a C0 or C1
// control character, DEL, a bidirectional or other format character
// (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, ...) — quoted with those
// escaped, as strconv.Quote does. Whoever calls the server writes some
// fields (the event name of an unauthenticated IAM or STS call is its
// Action as given): none may start a row or a column of its own, move
// the cursor, colour the terminal or reorder the text around it.
func cell(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// flush writes out what was printed so far.
func (p *printer) flush() error {
	if p.tw != nil {
		if err := p.tw.Flush(); err != nil {
			return err
		}
	}
	return p.w.Flush()
}
