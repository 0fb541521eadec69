package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The documentation and the binary's command line agree: the synopses
// of docs/audit.md are the usage lines of the commands they describe.

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
