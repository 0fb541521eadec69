package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeCommands runs the aws CLI examples of README.md as they are
// written there, block after block in one shell, against a dev server
// configured with the exports it prints: what a newcomer types, in the
// order they read it. A command must succeed unless its own comment, or
// the error output the README quotes right after it ("# An error
// occurred (AccessDeniedException) ..."), name the error it gets: then
// it must fail with that error. So an example that stops working, or one that
// works only out of order (a key left disabled by the block before), or
// a comment promising an outcome the server does not give, fails here.
//
// Lines holding a placeholder ("..." or "…") are left out, and so is what
// the README leaves to the reader in prose: the test writes the team's
// credentials file and the console's key policy between the blocks, as
// the README describes them.
func TestReadmeCommands(t *testing.T) {
	t.Parallel()
	requireAWS(t)
	for _, tool := range []string{"bash", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the README's commands: %v", tool, err)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))

	// The blocks, from the line that starts each (a blank line does not
	// end a block), in the README's order.
	var script strings.Builder
	script.WriteString(readmeRunner)
	for _, step := range []struct{ first, before, after string }{
		{first: `key=$(aws kms create-key --description "orders service"`},
		{first: `printf 'card 4111-1111' > secret.txt`},
		{first: `aws kms decrypt --key-id alias/orders --dry-run`},
		{first: `other_key=$(aws kms create-key`},
		{first: `aws kms generate-data-key --key-id alias/orders`},
		{first: `go build -o bin/kms ./cmd/kms`, before: readmeFilesSetup},
		{first: `aws kms disable-key --key-id "$key"`},
		{first: `aws kms enable-key-rotation --key-id "$key"`},
		{first: `ext=$(aws kms create-key --origin EXTERNAL`},
		{first: `aws kms get-key-last-usage --key-id "$key"`},
		{first: `printf 'hello' > msg.txt`},
		{first: `key=$(aws kms create-key --region us-east-1 --multi-region`},
		{first: `aws iam create-user --user-name myKeyManager`, after: readmeTeamSetup},
		{first: `key=$(aws kms create-key --policy file://policy.json`},
		{first: `team() {`},
		{first: `aws iam list-access-keys --user-name myKeyUser`},
		{first: `aws iam create-role --role-name app`},
		{first: `grant_id=$(aws kms create-grant`},
		{first: `aws iam create-user --user-name alice`},
	} {
		var block []string
		for _, b := range blocks {
			for i, line := range b {
				if block == nil && strings.HasPrefix(line, step.first) {
					block = b[i:]
				}
			}
		}
		if block == nil {
			t.Fatalf("README.md has no example block starting with %q", step.first)
		}
		script.WriteString(step.before)
		for _, c := range readmeCommands(block) {
			if c.placeholder || strings.HasPrefix(c.text, "aws sts assume-role") || strings.HasPrefix(c.text, "go build") {
				// assume-role is for an IAM user the README leaves the
				// reader to set up: the account root is refused. The
				// binary under test stands in for the one go build makes.
				continue
			}
			fmt.Fprintf(&script, "{\n%s\n} >\"$out\" 2>\"$err\"\ncheck $? %s %s\n", c.text, shellQuote(c.wantErr), shellQuote(c.text))
		}
		script.WriteString(step.after)
	}
	script.WriteString("printf 'README commands passed\\n'\n")

	s := startDev(t, t.TempDir())
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The exports the server prints, and nothing else of the user's.
	env := baseEnv(
		"HOME="+home,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"),
		"AWS_ENDPOINT_URL="+s.URL,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	// The bound only ends a hang (each aws command also has the CLI's own
	// timeouts): the script took 54 to 141 s on a loaded 2-core machine,
	// running the README's commands one after another beside the
	// package's other tests, so 5 minutes left it twice its worst time.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env = append(env, "README_KMS_BIN="+kmsBin)
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Env, cmd.Dir = env, t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's commands: %v\n%s", err, out.String())
	}
	t.Logf("the README's commands took %v", time.Since(start).Round(time.Millisecond))
	if !strings.HasSuffix(out.String(), "README commands passed\n") {
		t.Fatalf("the README's commands did not all run\n%s", out.String())
	}
}

// readmeRunner starts the script: check RC WANT LINE fails the script
// unless the command LINE exited 0 (WANT empty) or failed with WANT in
// its error output.
const readmeRunner = `set -uo pipefail
out=$(mktemp) err=$(mktemp)
check() {
	local rc=$1 want=$2 line=$3
	printf '$ %s\n' "$line"
	if [[ -z $want ]]; then
		if ((rc != 0)); then
			cat "$err"
			printf 'README command failed (exit %d); the README says it succeeds\n' "$rc"
			exit 1
		fi
	elif ((rc == 0)); then
		cat "$out"
		printf 'README command succeeded; the README says it fails with %s\n' "$want"
		exit 1
	elif ! grep -q -- "$want" "$err"; then
		cat "$err"
		printf 'README command failed (exit %d), but not with %s as the README says\n' "$rc" "$want"
		exit 1
	fi
}
`

// readmeFilesSetup gives the README's kms encrypt and decrypt examples
// the binary it builds and the files they read.
const readmeFilesSetup = `mkdir -p bin data && ln -s "$README_KMS_BIN" bin/kms
head -c 100000 /dev/urandom >data/random.bin
tar cf backup.tar data
`

// readmeTeamSetup does what the README describes in prose between its
// blocks: a credentials file with profiles manager and user, and the key
// policy the AWS console writes.
const readmeTeamSetup = `for p in manager:myKeyManager user:myKeyUser; do
	read -r id secret < <(aws iam create-access-key --user-name "${p#*:}" \
		--query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text) || exit 1
	printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "${p%%:*}" "$id" "$secret" >>team-credentials
done
acct=arn:aws:iam::111122223333
cat >policy.json <<EOF
{"Version": "2012-10-17", "Statement": [
 {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "$acct:root"},
  "Action": "kms:*", "Resource": "*"},
 {"Sid": "Allow access for Key Administrators", "Effect": "Allow", "Principal": {"AWS": "$acct:user/myKeyManager"},
  "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
   "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
   "kms:CancelKeyDeletion"], "Resource": "*"},
 {"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": "$acct:user/myKeyUser"},
  "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
 {"Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": "$acct:user/myKeyUser"},
  "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
  "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]}
EOF
`

// readmeBlocks returns README.md's indented code blocks, each as its
// lines without the indentation; blank lines between indented lines
// belong to the block, and are dropped.
func readmeBlocks(readme string) [][]string {
	var blocks [][]string
	var cur []string
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "    "):
			cur = append(cur, line[4:])
		case strings.TrimSpace(line) == "":
		default:
			if cur != nil {
				blocks = append(blocks, cur)
				cur = nil
			}
		}
	}
	if cur != nil {
		blocks = append(blocks, cur)
	}
	return blocks
}

// readmeCommand is one command of a README block: its lines (with their
// continuations), the error the README says it fails with, if any, and
// whether it holds a placeholder for the reader to fill in.
type readmeCommand struct {
	text        string
	wantErr     string
	placeholder bool
}

var (
	readmeErrRE       = regexp.MustCompile(`\b([A-Z][A-Za-z]*Exception|AccessDenied)\b`)
	readmeCommentRE   = regexp.MustCompile(`\s#\s(.*)$`)
	readmeErrOutputRE = regexp.MustCompile(`^#\s*An error occurred \((\w+)\)`)
)

// readmeCommands splits a block into commands. A comment on the
// command's last line that names an error type, or the aws CLI's error
// output quoted in the comment lines after it, says the command fails
// with that error. Other comment lines are prose.
func readmeCommands(block []string) []readmeCommand {
	var cmds []readmeCommand
	continued := false
	for _, line := range block {
		trimmed := strings.TrimSpace(line)
		switch {
		case continued:
			c := &cmds[len(cmds)-1]
			c.text += "\n" + line
		case strings.HasPrefix(trimmed, "#"):
			if len(cmds) > 0 {
				c := &cmds[len(cmds)-1]
				if m := readmeErrOutputRE.FindStringSubmatch(trimmed); m != nil && c.wantErr == "" {
					c.wantErr = m[1]
				}
			}
			continue
		default:
			cmds = append(cmds, readmeCommand{text: line})
		}
		c := &cmds[len(cmds)-1]
		if strings.Contains(line, "...") || strings.Contains(line, "…") {
			c.placeholder = true
		}
		continued = strings.HasSuffix(line, `\`)
		if !continued {
			if m := readmeCommentRE.FindStringSubmatch(line); m != nil {
				if e := readmeErrRE.FindStringSubmatch(m[1]); e != nil {
					c.wantErr = e[1]
				}
			}
		}
	}
	return cmds
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
