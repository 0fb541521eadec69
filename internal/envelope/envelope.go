// Package envelope is the file side of `kms encrypt` and `kms decrypt`:
// it streams a file or stdin through the AWS Encryption SDK message format
// (package esdk) with data keys from KMS (package esdk/kmskeyring), using
// the usual AWS configuration: AWS_PROFILE, AWS_REGION or
// AWS_DEFAULT_REGION (us-east-1 when nothing names a region), the shared
// config and credentials files, AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL, or
// an explicit endpoint.
//
// Output to a regular file (or through a symbolic link, to the file it
// points to, keeping the link) goes to a temporary file in the same
// directory, unnamed (O_TMPFILE) where the file system allows, fsynced and
// renamed over the target only once the whole message has been processed:
// a failed decrypt, or one stopped by SIGINT, SIGTERM or SIGHUP (SIGKILL
// too, where the temporary file is unnamed), leaves no plaintext under any
// name. Output to anything else (a device such as /dev/null, a FIFO, a
// socket) is written in place, as is stdout: what was written before a
// failure is authenticated plaintext, but the message is incomplete, and
// the command exits non-zero. With Options.Buffer, decrypt writes nothing
// anywhere before the whole message has verified.
package envelope

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/esdk/kmskeyring"
)

// Options configure one encryption or decryption.
type Options struct {
	Keys        []string          // KMS keys: id, ARN, alias name or alias ARN (encrypt: at least one)
	Context     map[string]string // encryption context (encrypt)
	Endpoint    string            // KMS endpoint URL; empty for the AWS configuration's
	Region      string            // overrides the configured region
	In, Out     string            // file names; "" or "-" for stdin and stdout
	FrameSize   int               // frame length in bytes (encrypt)
	Signed      bool              // use the ECDSA P-384 signed suite (encrypt)
	Progress    io.Writer         // where a progress line goes, or nil
	Stdin       io.Reader
	Stdout      io.Writer
	Concurrency int
	// MaxEncryptedDataKeys refuses (decrypt) a message with more
	// encrypted data keys, before any is sent to KMS; 0: no limit.
	MaxEncryptedDataKeys int
	// AllowNonCommitting decrypts messages in the suites without key
	// commitment (message format version 1: 0x0014, 0x0046, 0x0078,
	// 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378), too;
	// otherwise they are refused before any data key is sent to KMS.
	AllowNonCommitting bool
	// RequiredContext and RequiredContextKeys (decrypt) refuse a
	// message whose encryption context lacks one of these pairs, or one
	// of these keys whatever its value, before any data key is sent to
	// KMS, as the AWS Encryption SDK CLI's --encryption-context does on
	// decrypt.
	RequiredContext     map[string]string
	RequiredContextKeys []string
	// DiscoveryAccounts (decrypt, without Keys) asks KMS only for data
	// keys under keys of these accounts of DiscoveryPartition; nil: any.
	DiscoveryAccounts  []string
	DiscoveryPartition string
	// Buffer (decrypt) writes nothing to the output before the whole
	// message has verified (esdk.DecryptOptions.Buffer): meanwhile the
	// plaintext waits sealed, in memory and then in a temporary file in
	// the system's temporary directory, about as large as the message.
	Buffer bool

	// For tests of the output: namedTemp writes a regular file through a
	// named temporary file even where O_TMPFILE works; afterFollow runs
	// after a symbolic link to the output was followed, before the file
	// it reached is looked up.
	namedTemp   bool
	afterFollow func(path string)
}

// client builds the KMS client of the AWS configuration.
func client(ctx context.Context, o *Options) (*kms.Client, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return kms.NewFromConfig(cfg, func(k *kms.Options) {
		if o.Endpoint != "" {
			k.BaseEndpoint = aws.String(o.Endpoint)
		}
	}), nil
}

// Encrypt encrypts In to Out.
func Encrypt(ctx context.Context, o Options) error {
	if len(o.Keys) == 0 {
		return fmt.Errorf("name at least one KMS key with --key")
	}
	c, err := client(ctx, &o)
	if err != nil {
		return err
	}
	in, size, closeIn, err := openIn(&o)
	if err != nil {
		return err
	}
	defer closeIn()
	out, err := openOut(&o)
	if err != nil {
		return err
	}
	defer out.commit(false)
	suite := esdk.SuiteCommitKey
	if o.Signed {
		suite = esdk.SuiteCommitKeyECDSAP384
	}
	w, err := esdk.NewEncrypter(ctx, out.w, kmskeyring.New(c, o.Keys...), esdk.EncryptOptions{
		Suite: suite, FrameLength: o.FrameSize, EncryptionContext: o.Context, Concurrency: o.Concurrency,
	})
	if err != nil {
		return err
	}
	if err := readAhead(w, progress(in, size, o.Progress)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.commit(true)
}

// Decrypt decrypts In to Out. Keys, if given, are the only KMS keys
// asked to decrypt the data key: each is resolved to its key ARN first, so
// an alias or key id restricts as an ARN does, and a message with no data
// key under one of them fails. So does a message whose encryption context
// lacks a pair of RequiredContext or a key of RequiredContextKeys.
func Decrypt(ctx context.Context, o Options) error {
	c, err := client(ctx, &o)
	if err != nil {
		return err
	}
	in, size, closeIn, err := openIn(&o)
	if err != nil {
		return err
	}
	defer closeIn()
	var kr esdk.Keyring = kmskeyring.New(c).WithDiscoveryFilter(o.DiscoveryPartition, o.DiscoveryAccounts...)
	if len(o.Keys) > 0 {
		arns, err := resolveKeys(ctx, c, o.Keys)
		if err != nil {
			return err
		}
		kr = strictKeyring{kmskeyring.New(c, arns...), o.Keys, arns}
	}
	if len(o.RequiredContext) > 0 || len(o.RequiredContextKeys) > 0 {
		kr = contextKeyring{kr, o.RequiredContext, o.RequiredContextKeys}
	}
	r, _, err := esdk.NewDecrypter(ctx, progress(in, size, o.Progress), kr, esdk.DecryptOptions{
		Concurrency: o.Concurrency, MaxEncryptedDataKeys: o.MaxEncryptedDataKeys, AllowNonCommitting: o.AllowNonCommitting,
		Buffer: o.Buffer,
	})
	if errors.Is(err, esdk.ErrTooManyEncryptedDataKeys) {
		return fmt.Errorf("%w (--max-encrypted-data-keys; none was sent to KMS)", err)
	}
	var nc *esdk.NonCommittingError
	if errors.As(err, &nc) {
		return fmt.Errorf("the message is in algorithm suite 0x%04X (%v), without key commitment, as the AWS Encryption SDKs 1.x write; "+
			"refused before any data key went to KMS: --commitment-policy require-encrypt-allow-decrypt decrypts it", uint16(nc.Suite), nc.Suite)
	}
	if err != nil {
		return err
	}
	out, err := openOut(&o)
	if err != nil {
		return err
	}
	defer out.commit(false)
	if _, err := io.Copy(out.w, r); err != nil {
		return err
	}
	return out.commit(true)
}

func openIn(o *Options) (io.Reader, int64, func(), error) {
	if o.In == "" || o.In == "-" {
		growPipe(o.Stdin)
		return o.Stdin, -1, func() {}, nil
	}
	f, err := os.Open(o.In)
	if err != nil {
		return nil, 0, nil, err
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// progress reports how much of a reader of known size was read, at most a
// few times a second, on w.
func progress(r io.Reader, size int64, w io.Writer) io.Reader {
	if w == nil || size <= 0 {
		return r
	}
	return &progressReader{r: r, size: size, w: w}
}

type progressReader struct {
	r     io.Reader
	size  int64
	n     int64
	w     io.Writer
	last  time.Time
	start time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	if now.Sub(p.last) > 200*time.Millisecond || err == io.EOF {
		p.last = now
		rate := float64(p.n) / max(now.Sub(p.start).Seconds(), 1e-3) / (1 << 20)
		fmt.Fprintf(p.w, "\r%5.1f%%  %d / %d MiB  %.0f MiB/s ", 100*float64(p.n)/float64(p.size), p.n>>20, p.size>>20, rate)
		if err == io.EOF {
			fmt.Fprintln(p.w)
		}
	}
	return n, err
}
