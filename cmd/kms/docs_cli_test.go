package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// The documentation and the binary's command line agree: every kms
// command the docs show uses only flags its --help lists, every command
// and flag that --help lists is named in the docs, the synopses of
// docs/audit.md are the usage lines of the commands they describe, and
// the server commands the docs show would start as shown.

// cliCommand is one kms command as its --help describes it.
type cliCommand struct {
	path  string            // "audit verify"; "" for kms itself
	usage string            // the first line under "Usage:", without "kms "
	long  map[string]bool   // its long flags, with the leading "--"
	short map[string]string // its shorthands ("-o") to their long flags
	subs  []string          // the paths of its subcommands
}

// cliCommands walks kms --help and the --help of every command below it.
// It leaves out cobra's own help command and the completion scripts'
// subcommands (bash, zsh, ...), which are cobra's and not ours.
func cliCommands(t *testing.T) map[string]*cliCommand {
	t.Helper()
	cmds := map[string]*cliCommand{}
	var walk func(path string)
	walk = func(path string) {
		args := append(strings.Fields(path), "--help")
		out, err := exec.Command(kmsBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kms %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		c := parseHelp(path, string(out))
		cmds[path] = c
		if path == "completion" {
			return
		}
		for _, sub := range c.subs {
			walk(sub)
		}
	}
	walk("")
	return cmds
}

var (
	helpFlag    = regexp.MustCompile(`^\s+(?:(-[a-zA-Z]), )?(--[a-z0-9-]+)`)
	helpCommand = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s`)
)

// parseHelp reads the usage line, the subcommands and the flags of one
// command's --help output.
func parseHelp(path, help string) *cliCommand {
	c := &cliCommand{path: path, long: map[string]bool{}, short: map[string]string{}}
	section := ""
	for _, line := range strings.Split(help, "\n") {
		if !strings.HasPrefix(line, " ") {
			section = strings.TrimSuffix(strings.TrimSpace(line), ":")
			continue
		}
		switch section {
		case "Usage":
			if c.usage == "" {
				c.usage = strings.TrimPrefix(strings.TrimSpace(line), "kms ")
			}
		case "Available Commands":
			if m := helpCommand.FindStringSubmatch(line); m != nil && m[1] != "help" {
				c.subs = append(c.subs, strings.TrimSpace(path+" "+m[1]))
			}
		case "Flags", "Global Flags":
			if m := helpFlag.FindStringSubmatch(line); m != nil {
				c.long[m[2]] = true
				if m[1] != "" {
					c.short[m[1]] = m[2]
				}
			}
		}
	}
	return c
}

// docInvocation is a kms command line as a doc shows it.
type docInvocation struct {
	file, text string
	path       string   // the command, as in cliCommand.path
	flags      []string // its flags as written, without values
	elided     bool     // "kms audit ... --endpoint": a command below path
}

var (
	indented   = regexp.MustCompile(`^ {4,}`)
	backticked = regexp.MustCompile("`([^`]+)`")
	envAssign  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
)

// docInvocations returns every kms command line of README.md and
// docs/*.md: in indented code blocks (with their continuation lines)
// and in `backticks` in the prose. kms counts as the command where it
// starts a line, a pipeline stage or a list, after any VAR=value
// assignments; a line such as "aws kms encrypt" or "kms: an error" is
// not one.
func docInvocations(t *testing.T, cmds map[string]*cliCommand) (all []docInvocation, corpus string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join("..", "..", "README.md")}, files...)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		name := filepath.Base(f)
		var prose, code []string
		cont := false
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case cont || indented.MatchString(line):
				line = strings.TrimSpace(line)
				if cont {
					code[len(code)-1] += " " + strings.TrimSuffix(line, `\`)
				} else {
					code = append(code, strings.TrimSuffix(line, `\`))
				}
				cont = strings.HasSuffix(line, `\`)
			default:
				prose = append(prose, line)
			}
		}
		for _, line := range code {
			all = append(all, parseInvocations(name, line, cmds)...)
		}
		for _, m := range backticked.FindAllStringSubmatch(strings.Join(prose, " "), -1) {
			all = append(all, parseInvocations(name, m[1], cmds)...)
		}
	}
	return all, b.String()
}

// parseInvocations finds the kms commands of one shell line. A pipe
// starts a new command where a command follows it, not where a flag
// does: in a synopsis, "--data-dir DIR | --storage DSN" is a choice.
func parseInvocations(file, line string, cmds map[string]*cliCommand) []docInvocation {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	var stages [][]string
	words := strings.Fields(line)
	cur := []string{}
	for i, w := range words {
		if w == "&&" || w == ";" || (w == "|" && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-")) {
			stages, cur = append(stages, cur), []string{}
			continue
		}
		cur = append(cur, w)
	}
	stages = append(stages, cur)
	var found []docInvocation
	for _, words := range stages {
		for len(words) > 0 && (envAssign.MatchString(words[0]) || words[0] == "$") {
			words = words[1:]
		}
		if len(words) == 0 || (words[0] != "kms" && words[0] != "bin/kms" && !strings.HasSuffix(words[0], "/bin/kms")) {
			continue
		}
		inv := docInvocation{file: file, text: strings.Join(words, " ")}
		rest := words[1:]
		for len(rest) > 0 {
			next := strings.TrimSpace(inv.path + " " + rest[0])
			if _, ok := cmds[next]; !ok {
				break
			}
			inv.path, rest = next, rest[1:]
		}
		for _, w := range rest {
			if w == "..." || w == "…" {
				inv.elided = true
			}
			if strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") {
				break
			}
			w = strings.TrimLeft(w, "[(")
			if strings.HasPrefix(w, "-") && len(w) > 1 && w != "--" {
				flag, _, _ := strings.Cut(w, "=")
				flag = strings.TrimRight(flag, ".,:;)]")
				inv.flags = append(inv.flags, flag)
			}
		}
		found = append(found, inv)
	}
	return found
}

// hasFlag says whether the command, or with elided true any command
// below it, has the flag f (long, or a shorthand).
func hasFlag(cmds map[string]*cliCommand, path, f string, elided bool) bool {
	for p, c := range cmds {
		if p != path && !(elided && strings.HasPrefix(p, strings.TrimSpace(path+" "))) {
			continue
		}
		if c.long[f] || c.short[f] != "" || f == "-h" {
			return true
		}
	}
	return false
}

func TestDocsNameOnlyRealFlags(t *testing.T) {
	t.Parallel()
	cmds := cliCommands(t)
	invs, _ := docInvocations(t, cmds)
	if len(invs) < 50 {
		t.Fatalf("found only %d kms command lines in the docs: is the parser broken?", len(invs))
	}
	for _, inv := range invs {
		if inv.path == "" && len(inv.flags) > 0 {
			t.Errorf("%s: %q names no kms command", inv.file, inv.text)
			continue
		}
		for _, f := range inv.flags {
			if !hasFlag(cmds, inv.path, f, inv.elided) {
				t.Errorf("%s: %q: kms %s has no flag %s", inv.file, inv.text, inv.path, f)
			}
		}
	}
}

func TestDocsNameEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	cmds := cliCommands(t)
	invs, corpus := docInvocations(t, cmds)
	// The shorthands the docs use with each command, by long flag.
	used := map[string]bool{}
	for _, inv := range invs {
		for _, f := range inv.flags {
			if long := cmds[inv.path].short[f]; long != "" {
				used[inv.path+" "+long] = true
			}
		}
	}
	var paths []string
	for p := range cmds {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if p == "" || strings.HasPrefix(p, "completion ") {
			continue
		}
		if !strings.Contains(corpus, "kms "+p) {
			t.Errorf("the docs never name kms %s", p)
		}
		for f := range cmds[p].long {
			if f == "--help" || strings.Contains(corpus, f) || used[p+" "+f] {
				continue
			}
			// The settings table of docs/operations.md names the server's
			// flags without their dashes.
			if p == "server" && strings.Contains(corpus, "`"+strings.TrimPrefix(f, "--")+"`") {
				continue
			}
			t.Errorf("the docs never name kms %s %s", p, f)
		}
	}
}

// TestAuditSynopses checks that the synopsis of each kms audit command in
// docs/audit.md is its usage line: the same flags, each required or
// optional alike.
func TestAuditSynopses(t *testing.T) {
	t.Parallel()
	cmds := cliCommands(t)
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	synopses := map[string]string{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		m := regexp.MustCompile(`^    kms (audit [a-z]+) (.*)$`).FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		s := "audit " + strings.Fields(m[1])[1] + " " + m[2]
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "                 ") {
			i++
			s += " " + strings.TrimSpace(lines[i])
		}
		synopses[m[1]] = strings.Join(strings.Fields(s), " ")
	}
	for _, p := range []string{"audit verify", "audit events", "audit export"} {
		doc, ok := synopses[p]
		if !ok {
			t.Errorf("docs/audit.md has no synopsis of kms %s", p)
			continue
		}
		if got := strings.TrimSuffix(cmds[p].usage, " [flags]"); got != doc {
			t.Errorf("kms %s --help shows\n\tkms %s\nwhere docs/audit.md shows\n\tkms %s", p, got, doc)
		}
	}
}

// TestDocsServeOffLoopbackOverTLS checks that every kms server command of
// the docs that listens on an address other than loopback says how it
// serves there: without --dev, the server refuses plain HTTP on such an
// address unless given a certificate or --insecure-http, so a command
// with neither fails as the reader types it.
func TestDocsServeOffLoopbackOverTLS(t *testing.T) {
	t.Parallel()
	cmds := cliCommands(t)
	invs, _ := docInvocations(t, cmds)
	checked := 0
	for _, inv := range invs {
		if inv.path != "server" {
			continue
		}
		words := strings.Fields(inv.text)
		listen, has := "", map[string]bool{}
		for i, w := range words {
			flag, value, ok := strings.Cut(w, "=")
			has[flag] = true
			if flag == "--listen" {
				if !ok && i+1 < len(words) {
					value = words[i+1]
				}
				listen = value
			}
		}
		host := listen
		if i := strings.LastIndex(listen, ":"); i >= 0 {
			host = listen[:i]
		}
		if listen == "" || host == "127.0.0.1" || host == "localhost" || host == "[::1]" {
			continue
		}
		checked++
		if !has["--dev"] && !has["--insecure-http"] && !(has["--tls-cert"] && has["--tls-key"]) {
			t.Errorf("%s: %q listens on %s in plain HTTP, which the server refuses: give --tls-cert and --tls-key (or --insecure-http behind a TLS proxy)", inv.file, inv.text, listen)
		}
	}
	if checked == 0 {
		t.Fatal("the docs show no kms server listening off loopback: is the parser broken?")
	}
}

// TestDocsMetricsTable checks the metrics table of docs/operations.md
// against what a server serves: the same kms_ metrics, each of the type
// the table gives.
func TestDocsMetricsTable(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]string{}
	row := regexp.MustCompile("^\\| `(kms_[a-z_]+)[^`]*` \\| ([a-z]+) \\|")
	for _, line := range strings.Split(string(data), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			doc[m[1]] = m[2]
		}
	}
	if len(doc) == 0 {
		t.Fatal("docs/operations.md has no metrics table")
	}
	s := startDev(t, t.TempDir())
	_, err = s.client(t).ListKeys(testCtx(t), &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	served := scrape(t, s.URL+"/metrics")
	for name, f := range served {
		if !strings.HasPrefix(name, "kms_") {
			continue
		}
		typ := strings.ToLower(f.GetType().String())
		switch want, ok := doc[name]; {
		case !ok:
			t.Errorf("the server serves %s, which docs/operations.md does not list", name)
		case want != typ:
			t.Errorf("docs/operations.md gives %s as a %s; the server serves a %s", name, want, typ)
		}
	}
	for name := range doc {
		if _, ok := served[name]; !ok {
			t.Errorf("docs/operations.md lists %s, which the server does not serve", name)
		}
	}
}

// TestHelpGivesNumericDefaults: every numeric flag of every command says
// in its --help what it is when not given. The flag package prints
// "(default N)" only for a value other than zero, so a flag whose zero
// means something (no limit, a share of another flag) must say so itself.
func TestHelpGivesNumericDefaults(t *testing.T) {
	t.Parallel()
	numeric := regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?(--[a-z0-9-]+) (?:int|int64|uint|float|duration)\s`)
	for path := range cliCommands(t) {
		args := append(strings.Fields(path), "--help")
		out, err := exec.Command(kmsBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kms %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if m := numeric.FindStringSubmatch(line); m != nil && !strings.Contains(line, "default") {
				t.Errorf("kms %s --help: %s does not say its default:\n%s", path, m[1], line)
			}
		}
	}
}

// TestPKCS11ToolLinesAgree: the pkcs11-tool command that `kms root-key
// init --help` and docs/operations.md give for making a root key with
// another tool name the same flags, among them the module (pkcs11-tool
// otherwise loads OpenSC's own and finds no token) and the token, as
// TestPKCS11RootKeyFromPKCS11Tool runs it.
func TestPKCS11ToolLinesAgree(t *testing.T) {
	t.Parallel()
	help, err := exec.Command(kmsBin, "root-key", "init", "--help").CombinedOutput()
	noErr(t, err, "kms root-key init --help")
	ops, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	noErr(t, err, "read docs/operations.md")
	line := regexp.MustCompile(`pkcs11-tool[^)` + "`" + `]*`)
	flags := func(where, text string) []string {
		m := line.FindString(strings.Join(strings.Fields(text), " "))
		if m == "" {
			t.Fatalf("%s gives no pkcs11-tool command", where)
		}
		var fs []string
		for _, w := range strings.Fields(m) {
			if strings.HasPrefix(w, "--") {
				fs = append(fs, w)
			}
		}
		sort.Strings(fs)
		return fs
	}
	h, d := flags("kms root-key init --help", string(help)), flags("docs/operations.md", string(ops))
	if strings.Join(h, " ") != strings.Join(d, " ") {
		t.Errorf("the pkcs11-tool flags differ: --help %v, docs/operations.md %v", h, d)
	}
	for _, want := range []string{"--module", "--token-label", "--login", "--keygen", "--sensitive"} {
		if !slices.Contains(h, want) {
			t.Errorf("kms root-key init --help's pkcs11-tool command lacks %s: %v", want, h)
		}
	}
}
