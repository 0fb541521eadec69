package auditcli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/openkms/kms/internal/audit"
)

// The audit operations of a running server (docs/audit.md, "Reading the
// trail over the API"): AWS JSON 1.1 on the KMS endpoint, signed with
// SigV4 for the service "kms".
const (
	trailTargetPrefix = "OpenKMSAudit_20261127."
	trailSigningName  = "kms"
	requestTimeout    = time.Minute
	maxResponseBytes  = 64 << 20 // a page is at most 4 MiB of lines, escaped in JSON
)

// endpointSource is the trail of a running server, read over its API with
// the credentials and region of the AWS configuration. It pulls the
// trail as stored and runs on it the checks of the source the server
// reads: a data directory's (when the server lists the one chain "") or a
// database's. Each request is a call the server records in its trail.
type endpointSource struct {
	url    string
	client *http.Client
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer

	file bool             // the server's trail is one log file, the chain ""
	list []string         // the chains listed when the source was opened
	read map[string]int64 // for next: chain → position of the last record read

	// answer holds call's answer, reused from call to call: a page of
	// records is megabytes, and growing a new buffer for each cost more
	// than decoding it.
	answer bytes.Buffer
	// throttleWait bounds the first wait before a throttled call is made
	// again (throttleWait, or Options.throttleWait).
	throttleWait time.Duration
}

// openEndpoint loads the AWS configuration (AWS_PROFILE, AWS_REGION, the
// shared config and credentials files, ...) and lists the server's chains.
func openEndpoint(ctx context.Context, o Options) (*endpointSource, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--endpoint %q: want an http:// or https:// URL", o.Endpoint)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Credentials == nil {
		return nil, errors.New("AWS configuration: no credentials to sign the requests with")
	}
	s := &endpointSource{
		url: u.String(), client: &http.Client{Timeout: requestTimeout}, creds: cfg.Credentials,
		region: cfg.Region, signer: v4.NewSigner(), read: map[string]int64{},
		throttleWait: throttleWait,
	}
	if o.throttleWait > 0 {
		s.throttleWait = o.throttleWait
	}
	if s.list, err = s.chainList(ctx); err != nil {
		return nil, err
	}
	s.file = len(s.list) == 1 && s.list[0] == ""
	return s, nil
}

func (s *endpointSource) chains() bool { return !s.file }

func (s *endpointSource) close() error {
	s.client.CloseIdleConnections()
	return nil
}

// call signs and posts in to the audit operation op and decodes the
// answer into out. It is not safe for concurrent use.
func (s *endpointSource) call(ctx context.Context, op string, in, out any) error {
	b, err := s.post(ctx, op, in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: the answer is not what was expected: %w", op, err)
	}
	return nil
}

// post signs and posts in to the audit operation op and returns the
// answer of a call that succeeded. A call the server throttles (its
// per-account rate limit) is made again after a wait, as SDKs do, up to
// maxThrottled times. The answer is valid until the next post: it is not
// safe for concurrent use.
func (s *endpointSource) post(ctx context.Context, op string, in any) ([]byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		b, throttled, err := s.postOnce(ctx, op, body)
		if !throttled || attempt == maxThrottled {
			return b, err
		}
		// Full jitter, as the AWS SDKs wait: a random time up to a bound
		// that doubles with each attempt.
		wait := time.Duration(rand.Int64N(int64(min(s.throttleWait<<attempt, maxThrottleWait)) + 1))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
	}
}

// A throttled call is made again up to maxThrottled times, after a wait
// of up to throttleWait (endpointSource.throttleWait), doubled each time
// up to maxThrottleWait.
const (
	maxThrottled    = 10
	throttleWait    = 200 * time.Millisecond
	maxThrottleWait = 10 * time.Second
)

// postOnce is one try of post; throttled reports a ThrottlingException.
func (s *endpointSource) postOnce(ctx context.Context, op string, body []byte) (_ []byte, throttled bool, _ error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", trailTargetPrefix+op)
	req.Header.Set("User-Agent", "kms-audit")
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), trailSigningName, s.region, time.Now()); err != nil {
		return nil, false, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	s.answer.Reset()
	_, err = s.answer.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	b := s.answer.Bytes()
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("%s: %w", op, err)
	case len(b) > maxResponseBytes:
		return nil, false, fmt.Errorf("%s: the answer exceeds %d bytes", op, maxResponseBytes)
	case resp.StatusCode != http.StatusOK:
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil || e.Type == "" {
			return nil, false, fmt.Errorf("%s: HTTP %s", op, resp.Status)
		}
		typ := e.Type[strings.LastIndexByte(e.Type, '#')+1:]
		return nil, typ == "ThrottlingException", fmt.Errorf("%s: %s: %s", op, typ, e.Message)
	}
	return b, false, nil
}

func (s *endpointSource) chainList(ctx context.Context) ([]string, error) {
	var out struct{ Chains []string }
	err := s.call(ctx, "ListAuditChains", struct{}{}, &out)
	return out.Chains, err
}

// trailLine is a line of a page and its position: its line number in a
// file, or its seq in PostgreSQL.
type trailLine struct {
	Sequence int64
	Line     string
}

// pages calls fn with each line of chain's records (op GetAuditRecords)
// or digests (GetAuditDigests) after position after, page by page, and
// returns the position of the last line the server read: past the lines
// it handed out, those it read and left out (another account's records),
// so that the next call starts after them. A page may be empty and still
// be followed by others: the server reads a bounded number of lines per
// call. The next page is asked for and decoded while fn goes through the
// lines of this one: the server, the decoding and the checks run side by
// side.
func (s *endpointSource) pages(ctx context.Context, op, chain string, after int64, fn func(trailLine) error) (int64, error) {
	type page struct {
		lines []trailLine
		more  bool
		last  int64 // the position to ask for the next page after
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	next := make(chan page, 1)
	go func() {
		defer close(next)
		at := after
		for {
			in := struct {
				Chain         string
				AfterSequence int64
			}{chain, at}
			var p page
			b, err := s.post(ctx, op, in)
			if err == nil {
				var more bool
				if p.lines, more, p.last, err = decodePage(b); err != nil {
					err = fmt.Errorf("%s: the answer is not what was expected: %w", op, err)
				}
				p.last = max(p.last, lastSequence(p.lines), at)
				if err == nil && more && p.last == at {
					err = fmt.Errorf("%s: a page after position %d that is truncated and goes no further", op, at)
				}
				p.more = err == nil && more
			}
			p.err = err
			select {
			case next <- p:
			case <-ctx.Done():
				return
			}
			if !p.more {
				return
			}
			at = p.last
		}
	}()
	// The pager is done with s (its answer buffer) before pages returns.
	defer func() {
		cancel()
		for range next {
		}
	}()
	for p := range next {
		if p.err != nil {
			return after, p.err
		}
		for _, ln := range p.lines {
			if ln.Sequence <= after {
				return after, fmt.Errorf("%s: position %d after %d: the server's pages are out of order", op, ln.Sequence, after)
			}
			after = ln.Sequence
			if err := fn(ln); err != nil {
				return after, err
			}
		}
		after = max(after, p.last)
		if !p.more {
			break
		}
	}
	return after, nil
}

// publicKey returns the PEM key the server keeps for chain's digests, or
// nil.
func (s *endpointSource) publicKey(ctx context.Context, chain string) ([]byte, error) {
	var out struct{ PublicKey string }
	if err := s.call(ctx, "GetAuditPublicKey", struct{ Chain string }{chain}, &out); err != nil || out.PublicKey == "" {
		return nil, err
	}
	return []byte(out.PublicKey), nil
}

// verify reads each chain's key, then its digests, then its records (so
// that every digest names a record already written), and checks them as
// dirSource or VerifyPostgres would.
func (s *endpointSource) verify(ctx context.Context, pub ed25519.PublicKey) ([]audit.Report, error) {
	if s.file {
		return s.verifyFile(ctx, pub)
	}
	reports := make([]audit.Report, 0, len(s.list))
	for _, chain := range s.list {
		r, err := s.verifyChain(ctx, chain, pub)
		if err != nil {
			return nil, fmt.Errorf("chain %s: %w", chain, err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// verifyFile copies the server's digests and key into the files of a
// temporary data directory, then checks its log as it reads it, page by
// page, as --data-dir checks a data directory: nothing of the log is kept
// but what the checks need.
func (s *endpointSource) verifyFile(ctx context.Context, pub ed25519.PublicKey) ([]audit.Report, error) {
	dir, err := os.MkdirTemp("", "kms-audit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if pub == nil {
		key, err := s.publicKey(ctx, "")
		if err != nil {
			return nil, err
		}
		if key != nil {
			if err := os.WriteFile(filepath.Join(dir, "audit.pub"), key, 0o600); err != nil {
				return nil, err
			}
		}
	}
	if err := s.copyLines(ctx, "GetAuditDigests", filepath.Join(dir, "audit-digests.log")); err != nil {
		return nil, err
	}
	d := &dirSource{dir: dir, live: true}
	a, err := d.readAnchors()
	if err != nil {
		return nil, err
	}
	defer a.close()
	check := audit.NewLogCheck(a.named())
	first := ""
	_, err = s.pages(ctx, "GetAuditRecords", "", 0, func(ln trailLine) error {
		if check.Lines() == 0 {
			first = eventTime([]byte(ln.Line))
		}
		// As the line would be read from a file: a newline in it ends
		// a line.
		for part := range strings.SplitSeq(ln.Line, "\n") {
			check.Line([]byte(part))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.report(check, check.Problems(), nil, first, a, pub)
}

// copyLines writes the lines of the file chain that op reads to path.
func (s *endpointSource) copyLines(ctx context.Context, op, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	_, err = s.pages(ctx, op, "", 0, func(ln trailLine) error {
		w.WriteString(ln.Line)
		return w.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// verifyChain checks one chain of a database with audit.ChainCheck, the
// check of VerifyPostgres.
func (s *endpointSource) verifyChain(ctx context.Context, chain string, pub ed25519.PublicKey) (audit.Report, error) {
	var key []byte
	if pub == nil {
		var err error
		if key, err = s.publicKey(ctx, chain); err != nil {
			return audit.Report{}, err
		}
	}
	var digests []audit.Row
	read := time.Now() // the digests read are at least those written by then
	_, err := s.pages(ctx, "GetAuditDigests", chain, 0, func(ln trailLine) error {
		digests = append(digests, audit.Row{Seq: ln.Sequence, Line: []byte(ln.Line)})
		return nil
	})
	if err != nil {
		return audit.Report{}, err
	}
	c := audit.NewChainCheck(chain, pub, key, digests, read)
	_, err = s.pages(ctx, "GetAuditRecords", chain, 0, func(ln trailLine) error {
		if !c.Record(ln.Sequence, []byte(ln.Line)) {
			return errBroken // the chain's key is unreadable: nothing more to check
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBroken) {
		return audit.Report{}, err
	}
	return c.Report(), nil
}

// errBroken ends reading a chain whose key cannot be read.
var errBroken = errors.New("the chain is broken")

// next reads every chain's records after the last one read. A log file's
// come in chain order; a database's are merged across the chains in the
// order of PostgresReader (eventTime, chain id, sequence number), which
// takes holding the kept records of one call in memory.
func (s *endpointSource) next(ctx context.Context, keep func(*audit.Record) bool, fn func(record) error) error {
	chains := []string{""}
	if !s.file {
		var err error
		if chains, err = s.chainList(ctx); err != nil {
			return err
		}
	}
	var recs []record
	for _, chain := range chains {
		var err error
		s.read[chain], err = s.pages(ctx, "GetAuditRecords", chain, s.read[chain], func(ln trailLine) error {
			err := audit.Read(strings.NewReader(ln.Line+"\n"), func(rec *audit.Record, event json.RawMessage) error {
				if keep != nil && !keep(rec) {
					return nil
				}
				r := record{chain: chain, rec: rec, event: event}
				if s.file {
					return fn(r)
				}
				recs = append(recs, r)
				return nil
			})
			if err != nil && !s.file {
				return fmt.Errorf("record %d of chain %s: %w", ln.Sequence, chain, err)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	slices.SortStableFunc(recs, func(a, b record) int {
		return cmp.Or(strings.Compare(a.rec.EventTime, b.rec.EventTime), strings.Compare(a.chain, b.chain), cmp.Compare(a.rec.Sequence, b.rec.Sequence))
	})
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
