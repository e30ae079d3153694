package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// command is one thing userapi does, named by one or two words.
type command struct {
	name    string // "serve", "keys create"
	args    string // what follows the name, for help
	summary string
	// short marks a one-off operator command: stdout is its answer (logs go
	// to stderr, warnings only), it needs few connections, and it never
	// changes the schema.
	short bool
	run   func(ctx context.Context, a *app, args []string) error
}

// app is what every command gets: the settings, a logger and the streams.
type app struct {
	cfg            config
	logger         *slog.Logger
	stdout, stderr io.Writer
}

// commands is every command, in the order --help lists them. The first is
// what a bare `userapi` runs.
var commands = []command{
	{name: "serve", args: "[--dev-key-file PATH]", run: serveCmd,
		summary: "apply migrations, then serve HTTP and run background jobs until SIGINT or SIGTERM. With --dev-key-file, once the address is open, print a development API key (admin scope) kept in PATH, made when PATH is missing or its key no longer works (make run uses it)"},
	{name: "worker", run: workerCmd,
		summary: "apply migrations, then run background jobs only (no HTTP) until SIGINT or SIGTERM"},
	{name: "migrate", run: migrateCmd,
		summary: "apply migrations (the service's, then the job queue's) and exit"},
	{name: "keys create", args: "--name NAME --scopes SCOPE[,SCOPE...] [--expires 90d] [--rate 1000/1m]", short: true, run: keysCreate,
		summary: "make an API key and print it, once, on stdout; the scopes are users:read, users:write, users:admin, jobs:read, webhooks:admin, events:read, audit:read and admin. --rate gives the key its own budget (each of reads and writes) instead of USERAPI_RATE_LIMIT and USERAPI_RATE_LIMIT_WRITES"},
	{name: "keys list", short: true, run: keysList,
		summary: "list the keys: prefix, name, scopes, rate, created, last used, expiry, state, and which key each was rolled from or to"},
	{name: "keys roll", args: "PREFIX [--expire-old 24h] [--expires 90d] [--rate 1000/1m]", short: true, run: keysRoll,
		summary: "make a successor of a key, with its name, scopes and rate (unless --rate), and print it once on stdout; the old key keeps working for --expire-old, then every instance refuses it"},
	{name: "keys revoke", args: "PREFIX", short: true, run: keysRevoke,
		summary: "revoke a key at once, on every instance"},
}

// errUsage marks a command line that makes no sense; run has said why.
var errUsage = errors.New("see userapi --help")

// findCommand picks the command args name, with the arguments after its
// name. help is set when args ask for help (-h, --help or help) rather than
// for the command; group is the first word when it names no command alone
// ("keys").
func findCommand(args []string) (cmd *command, rest []string, group string, help bool) {
	if len(args) == 0 {
		return &commands[0], nil, "", false
	}
	if isHelp(args[0]) {
		return nil, nil, "", true
	}
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			rest = args[len(words):]
			return &commands[i], rest, "", slices.ContainsFunc(rest, isHelp)
		}
	}
	if len(inGroup(args[0])) > 0 {
		return nil, nil, args[0], len(args) > 1 && isHelp(args[1])
	}
	return nil, nil, "", false
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// inGroup returns the commands whose name starts with the word group.
func inGroup(group string) []command {
	var in []command
	for _, c := range commands {
		if first, _, ok := strings.Cut(c.name, " "); ok && first == group {
			in = append(in, c)
		}
	}
	return in
}

// usage is the text of `userapi --help`: the commands, then the settings.
func usage() string {
	var b strings.Builder
	b.WriteString("userapi: user management over HTTP.\n\nUsage:\n")
	writeCommands(&b, commands)
	b.WriteString("  userapi COMMAND --help\n      this text, or one command's\n")
	b.WriteString("\nEnvironment (defaults in brackets; switches take on/off, true/false or 1/0):\n")
	for _, s := range settings(&config{}) {
		text := strings.ReplaceAll(s.help, "`", "") + " [" + s.def + "]"
		writeWrapped(&b, fmt.Sprintf("  %-30s ", s.name), text)
	}
	return b.String()
}

// commandUsage is the help of one command, or of a group of them.
func commandUsage(cmds []command) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	writeCommands(&b, cmds)
	b.WriteString("\nThe environment is the service's: see userapi --help.\n")
	return b.String()
}

func writeCommands(b *strings.Builder, cmds []command) {
	for _, c := range cmds {
		fmt.Fprintf(b, "  %s\n", strings.TrimSpace("userapi "+c.name+" "+c.args))
		writeWrapped(b, "      ", c.summary)
	}
}

// helpWidth is where --help wraps its lines.
const helpWidth = 80

// writeWrapped writes text after lead, wrapped to helpWidth, each further
// line indented to lead's width.
func writeWrapped(b *strings.Builder, lead, text string) {
	line, words := lead, 0
	indent := strings.Repeat(" ", len(lead))
	for _, w := range strings.Fields(text) {
		if words > 0 && len(line)+len(w) > helpWidth {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line, words = indent, 0
		}
		line += w + " "
		words++
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}

// newFlags returns a flag set for the command name that reports to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
