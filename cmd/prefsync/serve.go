package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"prefsync"
	prefhttp "prefsync/http"
	"prefsync/inbound"
	"prefsync/inbound/mailchimp"
	"prefsync/inbound/postmark"
	"prefsync/inbound/sendgrid"
	"prefsync/inbound/ses"
	"prefsync/inbound/twilio"
	"prefsync/mailto"
	"prefsync/postgres"
	"prefsync/web"
	"prefsync/webhook"
)

func (p *Program) serve(ctx context.Context, args []string) error {
	cfg, _, err := p.parseConfig("serve", args, nil)
	if err != nil {
		return err
	}
	logger := cfg.logger(p.Stderr)
	dict, store, err := cfg.open(ctx, true)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := p.bootstrap(ctx, store, cfg.BootstrapAdminKey); err != nil {
		return err
	}

	hub := &prefsync.Hub{Store: store, Index: prefsync.NewIndex(dict), Dict: dict, Normalizer: cfg.normalizer(),
		Now: time.Now, Random: rand.Reader}
	// On PostgreSQL, other processes may share the store: the index follows their
	// commits from where the database stood before it was loaded.
	pg, shared := store.(*postgres.DB)
	var from postgres.Cursor
	if shared {
		if from, err = pg.Position(ctx); err != nil {
			return fmt.Errorf("database position: %w", err)
		}
	}
	start := time.Now()
	if err := hub.Load(ctx); err != nil {
		return err
	}
	logger.Info("check index loaded", "contacts", hub.Index.Len(), "took", time.Since(start).Round(time.Millisecond))

	metrics := prefhttp.NewMetrics(hub.Index.Len)
	dispatcher := webhook.New(store, webhook.Config{Timeout: cfg.DeliveryTimeout, ProbeInterval: cfg.ProbeInterval,
		DisableAfter: cfg.DisableFailingAfter, Logger: logger, Metrics: webhook.NewMetrics(metrics.Registerer(), store, time.Now)})
	hub.Dispatcher = dispatcher
	if shared {
		go pg.Follow(ctx, from, func(ch postgres.Changes) {
			if ch.Reload {
				logger.Warn("far behind the other processes: reloading the check index")
				if err := hub.Load(ctx); err != nil {
					logger.Error("reload the check index", "err", err)
				}
			}
			hub.Follow(ch.Contacts, ch.Merged, ch.Suppressions)
			dispatcher.DeliveriesAdded()
		})
	}
	// The dispatcher stops after the API (no new changes) and before the store closes.
	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		dispatcher.Run(dctx)
	}()
	defer func() {
		stopDispatch()
		<-dispatched
	}()

	api := prefhttp.NewServer(hub, logger, metrics)
	api.MaxBodyBytes = cfg.MaxBodyBytes
	api.UnsubscribeURL = func(token string) string { return web.UnsubscribeURL(cfg.PublicURL, token) }
	api.PreferenceURL = func(token string) string { return web.PreferenceURL(cfg.PublicURL, token) }
	api.PreferenceLinkTTL = cfg.PreferenceLinkTTL
	if cfg.SMTPAddr != "" {
		mail := mailto.New(hub, cfg.SMTPDomain, logger)
		sln, err := net.Listen("tcp", cfg.SMTPAddr)
		if err != nil {
			return fmt.Errorf("listen for mail on %s: %w", cfg.SMTPAddr, err)
		}
		go func() {
			if err := mail.Serve(sln); err != nil {
				logger.Error("smtp listener", "err", err)
			}
		}()
		defer mail.Close()
		api.UnsubscribeMailto = mail.URI
		logger.Info("listening for unsubscribe mail", "addr", sln.Addr().String(), "address", mailto.Local+"@"+cfg.SMTPDomain)
	}
	adapters := inbound.Adapters{"twilio": twilio.Adapter{Dict: dict}, "sendgrid": sendgrid.Adapter{Dict: dict},
		"postmark": postmark.Adapter{Dict: dict}, "mailchimp": mailchimp.Adapter{Dict: dict}, "ses": ses.Adapter{Dict: dict}}
	api.SourceKinds = adapters
	api.InboundURL = func(in *prefsync.Inbound) string { return inbound.URL(cfg.PublicURL, in) }
	// Beside the JSON API: the contact's pages (reached by signed links) and the URLs
	// providers call back.
	root := http.NewServeMux()
	pages := web.New(hub, logger)
	pages.Brand, pages.PreferenceLinkTTL, pages.PublicURL, pages.TrustedProxies = cfg.Brand, cfg.PreferenceLinkTTL, cfg.PublicURL, cfg.TrustedProxies
	if cfg.SMTPRelay != "" {
		pages.Mailer = &mailto.Sender{Relay: cfg.SMTPRelay, From: cfg.MailFrom, Now: time.Now}
		pages.ConfirmChanges = cfg.MailConfirmations
	}
	root.Handle("/u/", pages)
	root.Handle("/p", pages)
	root.Handle("/p/", pages)
	root.Handle("/assets/", pages)
	root.Handle("/in/", inbound.NewHandler(hub, adapters, cfg.PublicURL, logger))
	root.Handle("/", api)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: root, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: nil, BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	logger.Info("prefsync listening", "addr", ln.Addr().String(), "database", cfg.Database, "public_url", cfg.PublicURL)
	if p.Listening != nil {
		p.Listening(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// bootstrap gives a store on its first start an admin key: the one in
// PREFSYNC_BOOTSTRAP_ADMIN_KEY, or a new one printed once.
func (p *Program) bootstrap(ctx context.Context, store prefsync.Store, secret string) error {
	var k *prefsync.APIKey
	var err error
	generated := secret == ""
	if generated {
		k, secret, err = prefsync.NewAPIKey("bootstrap", []string{prefsync.ScopeAdmin}, time.Now())
	} else {
		k, err = prefsync.APIKeyFromSecret("bootstrap", []string{prefsync.ScopeAdmin}, secret, time.Now())
	}
	if err != nil {
		return fmt.Errorf("PREFSYNC_BOOTSTRAP_ADMIN_KEY: %w", err)
	}
	created, err := store.CreateAPIKey(ctx, k, true)
	if err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	}
	if created && generated {
		fmt.Fprintf(p.Stdout, "New store: admin API key (shown only now, keep it safe):\n%s\n", secret)
	}
	return nil
}
