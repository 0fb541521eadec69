package server

import (
	"fmt"
	"regexp"
	"strings"
)

// accountID is the form of an account id, as AWS's: 12 digits.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// ParseAuditorAccounts reads --auditor-accounts: account ids separated by
// commas or spaces. Each must be an account id: an entry that names no
// account (an ARN, a digit missing) is refused rather than kept, since
// the setting grants reading every account's records and a server
// started with it would grant that to no one the operator meant. With
// dev and no list, the dev account.
func ParseAuditorAccounts(list string, dev bool) ([]string, error) {
	accounts := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' })
	for _, a := range accounts {
		if !accountID.MatchString(a) {
			return nil, fmt.Errorf("--auditor-accounts: %q is not an account id (12 digits, like %s)", a, DevAccount)
		}
	}
	if dev && len(accounts) == 0 {
		accounts = []string{DevAccount}
	}
	return accounts, nil
}
