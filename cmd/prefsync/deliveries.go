package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"prefsync"
)

// deliveries lists a destination's deliveries and replays dead letters. A running hub
// picks replayed deliveries up within its poll interval.
func (p *Program) deliveries(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(p.Stderr, "usage: prefsync deliveries list|replay --destination NAME [flags]\n")
		return errUsage
	}
	var dest, status, since string
	var id int64
	var limit int
	cfg, _, err := p.parseConfig("deliveries "+args[0], args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&dest, "destination", "", "the destination's name")
		fs.StringVar(&status, "status", "", "list: only deliveries with this status (pending, delivered, dead, cancelled)")
		fs.IntVar(&limit, "limit", 100, "list: at most this many")
		fs.Int64Var(&id, "id", 0, "replay: the dead delivery with this id")
		fs.StringVar(&since, "since", "", "replay: every dead delivery accepted at or after this RFC 3339 time")
	})
	if err != nil {
		return err
	}
	if dest == "" {
		return fmt.Errorf("deliveries %s: --destination is required", args[0])
	}
	_, store, err := cfg.open(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()
	if status != "" && !prefsync.DeliveryStatus(status).Known() {
		return fmt.Errorf("deliveries list: --status %q: want pending, delivered, dead or cancelled", status)
	}
	f := prefsync.DeliveryFilter{Destination: dest, Status: prefsync.DeliveryStatus(status), ID: id, Limit: limit}
	if args[0] == "list" {
		ds, err := store.Deliveries(ctx, f)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(p.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSEQ\tCONTACT\tVERSION\tSTATUS\tATTEMPTS\tLAST CODE\tLAST ERROR\tCREATED")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", d.ID, d.Seq, d.ContactID, d.Version, d.Status,
				d.Attempts, d.LastCode, d.LastError, d.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	if (id == 0) == (since == "") {
		return fmt.Errorf("deliveries replay: give either --id or --since")
	}
	if since != "" {
		if f.Since, err = time.Parse(time.RFC3339Nano, since); err != nil {
			return fmt.Errorf("deliveries replay: --since: want an RFC 3339 time such as 2026-11-01T00:00:00Z")
		}
	}
	n, err := store.ReplayDeliveries(ctx, f, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(p.Stdout, "replayed %d dead deliveries to %s\n", n, dest)
	return nil
}
