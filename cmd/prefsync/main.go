// Command prefsync runs the prefsync hub and its administrative commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"prefsync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &Program{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	if err := p.Run(ctx, os.Args[1:]); err != nil {
		switch {
		case errors.Is(err, errUsage):
		case prefsync.ErrorCode(err) != prefsync.EINTERNAL:
			fmt.Fprintln(os.Stderr, "prefsync:", prefsync.ErrorMessage(err))
		default:
			fmt.Fprintln(os.Stderr, "prefsync:", err)
		}
		os.Exit(1)
	}
}

// Program is the command line, with its outside world injected so tests can run it.
type Program struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Listening, when set, is told the address the server listens on.
	Listening func(addr string)
}

var errUsage = errors.New("usage")

const usage = `prefsync: one source of truth for opt-outs and opt-ins.

Commands:
  prefsync serve [flags]                          run the hub
  prefsync keys create --name NAME --scopes S,S   make an API key (printed once)
  prefsync keys list                              list API keys
  prefsync keys revoke ID                         revoke an API key
  prefsync audit verify                           check the audit trail's hash chain
  prefsync migrate                                create or migrate the database, then exit
  prefsync deliveries list --destination NAME     list a destination's deliveries
  prefsync deliveries replay --destination NAME --id N | --since TIME
                                                  send dead deliveries again

Run "prefsync COMMAND -h" for a command's flags.
`

// Run runs the command named by args.
func (p *Program) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(p.Stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return p.serve(ctx, args[1:])
	case "keys":
		return p.keys(ctx, args[1:])
	case "audit":
		return p.audit(ctx, args[1:])
	case "deliveries":
		return p.deliveries(ctx, args[1:])
	case "migrate":
		return p.migrate(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(p.Stdout, usage)
		return nil
	}
	fmt.Fprintf(p.Stderr, "unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
