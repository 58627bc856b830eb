package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"prefsync"
)

func (p *Program) keys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(p.Stderr, "usage: prefsync keys create|list|revoke\n")
		return errUsage
	}
	var name, scopes string
	cfg, fs, err := p.parseConfig("keys "+args[0], args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "the key's name, e.g. the system that uses it")
		fs.StringVar(&scopes, "scopes", "", "comma-separated scopes: "+strings.Join(prefsync.KeyScopes, ","))
	})
	if err != nil {
		return err
	}
	_, store, err := cfg.open(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()
	switch args[0] {
	case "create":
		k, secret, err := prefsync.NewAPIKey(name, splitList(scopes), time.Now())
		if err != nil {
			return fmt.Errorf("keys create: --%s: %s", flagOf(prefsync.ErrorField(err)), prefsync.ErrorMessage(err))
		}
		if _, err := store.CreateAPIKey(ctx, k, false); err != nil {
			return err
		}
		fmt.Fprintf(p.Stderr, "created key %s (%s) with scopes %s; the secret is shown only now:\n", k.ID, k.Name, strings.Join(k.Scopes, ","))
		fmt.Fprintln(p.Stdout, secret)
	case "list":
		keys, err := store.APIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(p.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := ""
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("keys revoke: give the key id")
		}
		return store.RevokeAPIKey(ctx, fs.Arg(0), time.Now())
	default:
		return fmt.Errorf("unknown keys command %q: want create, list or revoke", args[0])
	}
	return nil
}

func flagOf(field string) string {
	if field == "" {
		return "name"
	}
	return field
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (p *Program) audit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(p.Stderr, "usage: prefsync audit verify [--database PATH]\n")
		return errUsage
	}
	cfg, _, err := p.parseConfig("audit verify", args[1:], nil)
	if err != nil {
		return err
	}
	_, store, err := cfg.open(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := store.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if !rep.OK {
		fmt.Fprintf(p.Stdout, "audit trail BROKEN at entry %d: %s (%d entries verified before it)\n", rep.BadSeq, rep.Problem, rep.Entries)
		return fmt.Errorf("audit verification failed")
	}
	fmt.Fprintf(p.Stdout, "audit trail OK: %d entries, head %s\n", rep.Entries, rep.Head)
	return nil
}

// migrate creates or migrates the store, as serve does at start, and exits: for
// deployments that migrate before they roll out new processes.
func (p *Program) migrate(ctx context.Context, args []string) error {
	cfg, _, err := p.parseConfig("migrate", args, nil)
	if err != nil {
		return err
	}
	_, store, err := cfg.open(ctx, true)
	if err != nil {
		return err
	}
	fmt.Fprintln(p.Stdout, "database is migrated:", cfg.Database)
	return store.Close()
}
