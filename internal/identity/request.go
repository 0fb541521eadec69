package identity

import (
	"context"
	"strconv"
	"time"

	"github.com/openkms/kms/internal/policy"
)

// RequestInfo is what IAM and STS decisions know of the request they
// decide, for the global condition keys of policies: aws:SourceIp,
// aws:SecureTransport, aws:RequestedRegion, and with the time of the
// decision aws:CurrentTime and aws:EpochTime (the same keys KMS decisions
// have).
type RequestInfo struct {
	SourceIP        string
	SecureTransport bool
	// Region is the region the call is made in: IAMRegion for an IAM
	// call, the region its signature is scoped to for an STS call.
	Region string
}

// IAMRegion is the region of every IAM call, whatever region its client
// signs for: IAM is a global service with one endpoint, in us-east-1, so
// on AWS its calls have aws:RequestedRegion us-east-1 and a policy that
// keeps a principal out of us-east-1 keeps it out of IAM.
const IAMRegion = "us-east-1"

type requestInfoKey struct{}

// WithRequest returns ctx carrying ri, for the IAM and STS calls made
// with it.
func WithRequest(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

type roleSessionNameKey struct{}

// withRoleSessionName returns ctx carrying the session name an AssumeRole
// call asks for: sts:RoleSessionName, in its trust and identity policy
// decisions alike.
func withRoleSessionName(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, roleSessionNameKey{}, name)
}

// requestContext is the policy context of a call: the request's keys when
// ctx carries them (WithRequest, withRoleSessionName), the time's (the
// directory's clock) always.
type requestContext struct {
	ri              RequestInfo
	known           bool
	now             time.Time
	roleSessionName string
}

func (d *Directory) contextOf(ctx context.Context) policy.Context {
	ri, ok := ctx.Value(requestInfoKey{}).(RequestInfo)
	name, _ := ctx.Value(roleSessionNameKey{}).(string)
	return requestContext{ri: ri, known: ok, now: d.now().UTC(), roleSessionName: name}
}

// Values implements policy.Context.
func (c requestContext) Values(key string) ([]string, bool) {
	switch key {
	case "aws:currenttime":
		return []string{c.now.Format(time.RFC3339)}, true
	case "aws:epochtime":
		return []string{strconv.FormatInt(c.now.Unix(), 10)}, true
	case "aws:sourceip":
		if c.known && c.ri.SourceIP != "" {
			return []string{c.ri.SourceIP}, true
		}
	case "aws:securetransport":
		if c.known {
			return []string{strconv.FormatBool(c.ri.SecureTransport)}, true
		}
	case "aws:requestedregion":
		if c.known && c.ri.Region != "" {
			return []string{c.ri.Region}, true
		}
	case "sts:rolesessionname":
		if c.roleSessionName != "" {
			return []string{c.roleSessionName}, true
		}
	}
	return nil, false
}
