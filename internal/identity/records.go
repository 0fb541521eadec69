package identity

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/openkms/kms/internal/store"
)

// Records (docs/storage.md), all JSON with a format version "v". Names of
// users and roles are stored lowercased: IAM names are unique regardless of
// case; the record keeps the name as given.
//
//	iam/account/<account>                         accountRecord: the account was initialised
//	iam/accesskey/<access-key-id>                 accessKeyRecord (secret sealed)
//	iam/rootkey/<account>                         the root's bootstrap access key id
//	iam/user/<account>/<name>                     userRecord
//	iam/userkey/<account>/<name>/<access-key-id>  empty: a user's access keys
//	iam/userpolicy/<account>/<name>/<policy>      policyRecord
//	iam/loginprofile/<account>/<name>             loginProfileRecord (argon2id hash)
//	iam/role/<account>/<name>                     roleRecord
//	iam/rolepolicy/<account>/<name>/<policy>      policyRecord
//	iam/session/<access-key-id>                   sessionRecord (secret sealed)
//	iam/rootkeys/<account>/<access-key-id>        empty: the root's access keys
//	sessionexpiry/<expiration>/<access-key-id>    empty: sessions by expiration (sessionExpiryKey)
//	meta/session-expiry-index                     every session is in sessionexpiry/, as of a date

// accountRecord says that an account was initialised (InitAccount): its
// root was given its first access key, and is never given one again.
type accountRecord struct {
	V       int       `json:"v"`
	Created time.Time `json:"created"`
}

type accessKeyRecord struct {
	V        int       `json:"v"`
	ID       string    `json:"id"`
	Account  string    `json:"account"`
	ARN      string    `json:"arn"`
	UserName string    `json:"userName,omitempty"` // empty for the root
	Status   string    `json:"status,omitempty"`   // Active (default) or Inactive
	Created  time.Time `json:"created"`
	Sealed   []byte    `json:"sealedSecret"`
}

type userRecord struct {
	V       int       `json:"v"`
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	Path    string    `json:"path"`
	Created time.Time `json:"created"`
}

type roleRecord struct {
	V           int       `json:"v"`
	Name        string    `json:"name"`
	ID          string    `json:"id"`
	Path        string    `json:"path"`
	Created     time.Time `json:"created"`
	TrustPolicy string    `json:"trustPolicy"`
	// TrustIDs binds the IAM users and roles TrustPolicy names to the
	// unique ids they had when it was set (policy.Policy.Bind), so that
	// one deleted and made again under the same name is not trusted;
	// TrustBound says it was (a role stored before trust policies were
	// bound has neither, and its trust policy matches by ARN).
	TrustIDs    map[string]string `json:"trustPrincipalIds,omitempty"`
	TrustBound  bool              `json:"trustBound,omitempty"`
	Description string            `json:"description,omitempty"`
	MaxSession  int32             `json:"maxSessionDuration"`
}

type policyRecord struct {
	V        int    `json:"v"`
	Name     string `json:"name"`
	Document string `json:"document"`
}

type sessionRecord struct {
	V           int    `json:"v"`
	ID          string `json:"id"`
	Account     string `json:"account"`
	RoleName    string `json:"roleName"`
	RoleID      string `json:"roleId"` // a session ends with its role, even if one of the same name comes back
	SessionName string `json:"sessionName"`
	// Issued is when the session began (aws:TokenIssueTime); zero in a
	// record stored before it was kept (issued returns a bound then).
	Issued     time.Time `json:"issued,omitzero"`
	Expiration time.Time `json:"expiration"`
	TokenHash  []byte    `json:"tokenHash"`
	Sealed     []byte    `json:"sealedSecret"`
}

// maxSessionLife is the longest a session lasts: AWS's 12 hours, the
// largest MaxSessionDuration of a role.
const maxSessionLife = 12 * time.Hour

// issued is when s began: Issued, or for a record stored before it was
// kept the earliest it can have begun, so that a policy that refuses
// sessions issued before a time (revoking them) refuses such a session
// too.
func (s *sessionRecord) issued() time.Time {
	if !s.Issued.IsZero() {
		return s.Issued
	}
	return s.Expiration.Add(-maxSessionLife)
}

func accountKey(account string) []byte    { return []byte("iam/account/" + account) }
func accessKeyKey(id string) []byte       { return []byte("iam/accesskey/" + id) }
func rootKeyKey(account string) []byte    { return []byte("iam/rootkey/" + account) }
func userKey(account, name string) []byte { return []byte("iam/user/" + account + "/" + lower(name)) }
func userPrefix(account string) []byte    { return []byte("iam/user/" + account + "/") }
func userKeysPrefix(account, name string) []byte {
	return []byte("iam/userkey/" + account + "/" + lower(name) + "/")
}
func userPolicyPrefix(account, name string) []byte {
	return []byte("iam/userpolicy/" + account + "/" + lower(name) + "/")
}
func loginProfileKey(account, name string) []byte {
	return []byte("iam/loginprofile/" + account + "/" + lower(name))
}
func roleKey(account, name string) []byte { return []byte("iam/role/" + account + "/" + lower(name)) }
func rolePrefix(account string) []byte    { return []byte("iam/role/" + account + "/") }
func rolePolicyPrefix(account, name string) []byte {
	return []byte("iam/rolepolicy/" + account + "/" + lower(name) + "/")
}
func sessionKey(id string) []byte          { return []byte("iam/session/" + id) }
func rootKeysPrefix(account string) []byte { return []byte("iam/rootkeys/" + account + "/") }

// sessionExpiryPrefix indexes sessions by their expiration, so that
// DeleteExpiredSessions reads the sessions due alone. Its records are
// named outside iam/: a change to one is no change to a credential
// (Directory.Changed), and AssumeRole writes one each time.
const sessionExpiryPrefix = "sessionexpiry/"

// sessionExpiryLayout writes an expiration in UTC at a fixed width, so
// that the index's names sort in time order.
const sessionExpiryLayout = "2006-01-02T15:04:05.000000000Z"

func sessionExpiryKey(expires time.Time, id string) []byte {
	return []byte(sessionExpiryPrefix + expires.UTC().Format(sessionExpiryLayout) + "/" + id)
}

// sessionIndexRecord marks a store every session of which is in the
// expiry index, with the date of the last reading of every session:
// sessions stored before the index, or without it by an earlier version
// since, are indexed by the first DeleteExpiredSessions that finds the
// store without the mark, or its date a week old (sessionSweepDue).
var sessionIndexRecord = []byte("meta/session-expiry-index")

var (
	getJSON = store.GetJSON
	putJSON = store.PutJSON
)

// scanJSON calls fn with each record under prefix, decoded into a fresh T.
func scanJSON[T any](tx store.Tx, prefix []byte, fn func(*T) error) error {
	return tx.Scan(prefix, nil, func(k, v []byte) (bool, error) {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return false, fmt.Errorf("record %s is corrupt: %w", k, err)
		}
		return true, fn(t)
	})
}

// scanPageJSON is scanJSON of one page: the records under prefix whose
// names follow prefix+after ("" from the first) and that keep takes (nil:
// all), at most max of them (max > 0). next is the name, less prefix, of
// the last record passed to fn when more that keep takes follow, for the
// page after; "" when none does. It reads at most max+1 records, and
// those keep passes over.
func scanPageJSON[T any](tx store.Tx, prefix []byte, after string, max int, keep func(*T) bool, fn func(*T)) (next string, err error) {
	var start []byte
	if after != "" {
		start = append(append([]byte(nil), prefix...), after...)
	}
	n, last := 0, ""
	err = tx.Scan(prefix, start, func(k, v []byte) (bool, error) {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return false, fmt.Errorf("record %s is corrupt: %w", k, err)
		}
		if keep != nil && !keep(t) {
			return true, nil
		}
		if n == max {
			next = last
			return false, nil
		}
		fn(t)
		n, last = n+1, string(k[len(prefix):])
		return true, nil
	})
	return next, err
}
