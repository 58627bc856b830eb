package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"prefsync"
	"prefsync/identifier"
	"prefsync/postgres"
	"prefsync/sqlite"
	"prefsync/web"
)

// Config is the whole configuration of the hub, from flags over PREFSYNC_* environment
// variables over defaults.
type Config struct {
	Addr               string
	Database           string
	PublicURL          string
	Dictionary         string
	DefaultPhoneRegion string
	MaxBodyBytes       int64
	LogLevel           string
	LogFormat          string
	ShutdownTimeout    time.Duration
	BootstrapAdminKey  string
	// Delivery tunes the webhook dispatcher.
	DeliveryTimeout     time.Duration
	ProbeInterval       time.Duration
	DisableFailingAfter time.Duration
	// SMTPAddr, when set, runs the SMTP listener of mailto: unsubscribes for SMTPDomain.
	SMTPAddr   string
	SMTPDomain string
	// The preference page: how long its links last, and the brand it shows.
	PreferenceLinkTTL time.Duration
	Brand             web.Brand
	// SMTPRelay and MailFrom, when set, let the page mail links people ask for, and,
	// with MailConfirmations, confirm each change.
	SMTPRelay         string
	MailFrom          string
	MailConfirmations bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names a page's
	// visitor, from --trusted-proxies: addresses and networks, comma-separated.
	TrustedProxies []netip.Prefix
	trustedProxies string
	// ClaimLease is how long a process holds the deliveries it took, on PostgreSQL;
	// DatabaseWait how long start-up waits for a PostgreSQL that does not answer.
	ClaimLease   time.Duration
	DatabaseWait time.Duration
}

// parseConfig parses a command's flags: the configuration's, and those extra adds.
func (p *Program) parseConfig(name string, args []string, extra func(*flag.FlagSet)) (*Config, *flag.FlagSet, error) {
	var cfg Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(p.Stderr)
	cfg.flags(fs, p.Getenv)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, errUsage
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	return &cfg, fs, nil
}

// flags registers the configuration's flags on fs, with defaults taken from the
// environment.
func (c *Config) flags(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Addr, "addr", env("PREFSYNC_ADDR", "127.0.0.1:8080"), "address to listen on (PREFSYNC_ADDR)")
	fs.StringVar(&c.Database, "database", env("PREFSYNC_DATABASE", "prefsync.db"), "SQLite file path, or postgres:// URL (PREFSYNC_DATABASE)")
	fs.StringVar(&c.PublicURL, "public-url", env("PREFSYNC_PUBLIC_URL", ""), "base URL for public links; default http://ADDR (PREFSYNC_PUBLIC_URL)")
	fs.StringVar(&c.Dictionary, "dictionary", env("PREFSYNC_DICTIONARY", ""), "preference dictionary JSON file; default built in (PREFSYNC_DICTIONARY)")
	fs.StringVar(&c.DefaultPhoneRegion, "default-phone-region", env("PREFSYNC_DEFAULT_PHONE_REGION", ""), "ISO region for phone numbers without country code, e.g. US (PREFSYNC_DEFAULT_PHONE_REGION)")
	fs.StringVar(&c.LogLevel, "log-level", env("PREFSYNC_LOG_LEVEL", "info"), "debug, info, warn or error (PREFSYNC_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("PREFSYNC_LOG_FORMAT", "text"), "text or json (PREFSYNC_LOG_FORMAT)")
	duration := func(p *time.Duration, name, envName, def, usage string) {
		v := env(envName, def)
		d, err := prefsync.ParseDuration(v)
		if err != nil {
			d = -1 // validate reports it
		}
		*p = d
		fs.Func(name, usage+" ("+envName+", default "+def+")", func(s string) error {
			d, err := prefsync.ParseDuration(s)
			*p = d
			return err
		})
	}
	duration(&c.DeliveryTimeout, "delivery-timeout", "PREFSYNC_DELIVERY_TIMEOUT", "10s", "how long one webhook delivery attempt may take")
	duration(&c.ProbeInterval, "probe-interval", "PREFSYNC_PROBE_INTERVAL", "30s", "the longest a failing destination goes unprobed")
	duration(&c.PreferenceLinkTTL, "preference-link-ttl", "PREFSYNC_PREFERENCE_LINK_TTL", "30d", "how long a preference page link lasts")
	fs.StringVar(&c.SMTPRelay, "smtp-relay", env("PREFSYNC_SMTP_RELAY", ""), "SMTP server (host:port) for mail to contacts: requested links, confirmations; off by default (PREFSYNC_SMTP_RELAY)")
	fs.StringVar(&c.MailFrom, "mail-from", env("PREFSYNC_MAIL_FROM", ""), "sender address of mail to contacts (PREFSYNC_MAIL_FROM)")
	fs.BoolVar(&c.MailConfirmations, "mail-confirmations", env("PREFSYNC_MAIL_CONFIRMATIONS", "") == "true", "mail contacts a confirmation of changes made on their page (PREFSYNC_MAIL_CONFIRMATIONS=true)")
	fs.StringVar(&c.Brand.Name, "brand-name", env("PREFSYNC_BRAND_NAME", ""), "company name on the preference page (PREFSYNC_BRAND_NAME)")
	fs.StringVar(&c.Brand.LogoURL, "brand-logo-url", env("PREFSYNC_BRAND_LOGO_URL", ""), "https URL of the logo on the preference page (PREFSYNC_BRAND_LOGO_URL)")
	fs.StringVar(&c.Brand.Color, "brand-color", env("PREFSYNC_BRAND_COLOR", "#1d4ed8"), "accent colour of the preference page, #rrggbb (PREFSYNC_BRAND_COLOR)")
	fs.StringVar(&c.Brand.Footer, "brand-footer", env("PREFSYNC_BRAND_FOOTER", ""), "footer text of the preference page (PREFSYNC_BRAND_FOOTER)")
	fs.StringVar(&c.Brand.PrivacyURL, "privacy-url", env("PREFSYNC_PRIVACY_URL", ""), "privacy policy link of the preference page (PREFSYNC_PRIVACY_URL)")
	duration(&c.DatabaseWait, "database-wait", "PREFSYNC_DATABASE_WAIT", "30s", "on PostgreSQL, how long start-up waits for a database that does not answer")
	duration(&c.ClaimLease, "claim-lease", "PREFSYNC_CLAIM_LEASE", "1m", "on PostgreSQL, how long a process holds the deliveries it took; a dead process's return to the others after it")
	duration(&c.DisableFailingAfter, "disable-failing-after", "PREFSYNC_DISABLE_FAILING_AFTER", "72h", "disable a destination that has been failing this long")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", env("PREFSYNC_TRUSTED_PROXIES", ""), "reverse proxies (addresses or networks, comma-separated, e.g. 10.0.0.0/8) whose X-Forwarded-For names a page's visitor (PREFSYNC_TRUSTED_PROXIES)")
	fs.StringVar(&c.SMTPAddr, "smtp-addr", env("PREFSYNC_SMTP_ADDR", ""), "listen for unsubscribe mail here, e.g. :25; off by default (PREFSYNC_SMTP_ADDR)")
	fs.StringVar(&c.SMTPDomain, "smtp-domain", env("PREFSYNC_SMTP_DOMAIN", ""), "the domain of the mailto: unsubscribe address; default the public URL's host (PREFSYNC_SMTP_DOMAIN)")
	c.MaxBodyBytes = 8 << 20
	c.ShutdownTimeout = 15 * time.Second
	c.BootstrapAdminKey = getenv("PREFSYNC_BOOTSTRAP_ADMIN_KEY")
}

// validate checks the configuration and fills derived defaults.
func (c *Config) validate() error {
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.SMTPDomain == "" {
		if u, err := url.Parse(c.PublicURL); err == nil {
			c.SMTPDomain = u.Hostname()
		}
	}
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return fmt.Errorf("--public-url %q must start with http:// or https://", c.PublicURL)
	}
	if (c.SMTPRelay == "") != (c.MailFrom == "") {
		return fmt.Errorf("--smtp-relay and --mail-from go together")
	}
	if !regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(c.Brand.Color) {
		return fmt.Errorf("--brand-color %q: want a colour such as #1d4ed8", c.Brand.Color)
	}
	if c.ClaimLease <= c.DeliveryTimeout && c.ClaimLease > 0 {
		return fmt.Errorf("--claim-lease %s must outlast --delivery-timeout %s", c.ClaimLease, c.DeliveryTimeout)
	}
	for name, d := range map[string]time.Duration{"database-wait": c.DatabaseWait, "claim-lease": c.ClaimLease, "preference-link-ttl": c.PreferenceLinkTTL, "delivery-timeout": c.DeliveryTimeout,
		"probe-interval": c.ProbeInterval, "disable-failing-after": c.DisableFailingAfter} {
		if d <= 0 {
			return fmt.Errorf("--%s: want a positive duration such as 30s, 5m or 3d", name)
		}
	}
	c.TrustedProxies = nil
	for _, p := range strings.Split(c.trustedProxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := trustedNetwork(p)
		if err != nil {
			return fmt.Errorf("--trusted-proxies: %q is neither an address nor a network such as 10.0.0.0/8", p)
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// trustedNetwork reads an address or a network of --trusted-proxies as clients' addresses
// are compared with it: IPv4 in IPv6 form as IPv4, without a zone.
func trustedNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

func (c *Config) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *Config) dictionary() (*prefsync.Dictionary, error) {
	if c.Dictionary == "" {
		return prefsync.DefaultDictionary(), nil
	}
	f, err := os.Open(c.Dictionary)
	if err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	defer f.Close()
	d, err := prefsync.ParseDictionary(f)
	if err != nil {
		return nil, fmt.Errorf("dictionary %s: %w", c.Dictionary, err)
	}
	return d, nil
}

func (c *Config) normalizer() prefsync.Normalizer {
	return identifier.Normalizer{DefaultRegion: strings.ToUpper(c.DefaultPhoneRegion)}
}

// open reads the dictionary and opens the store the configuration names. Only serve
// creates a store; the other commands need one that exists.
func (c *Config) open(ctx context.Context, create bool) (*prefsync.Dictionary, prefsync.Store, error) {
	dict, err := c.dictionary()
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://") {
		store, err := postgres.Open(ctx, postgres.Config{DSN: c.Database, ConflictWindow: dict.ConflictWindowDuration(),
			ClaimLease: c.ClaimLease, StartupWait: c.DatabaseWait})
		if err != nil {
			return nil, nil, fmt.Errorf("--database: PostgreSQL: %w", err)
		}
		return dict, store, nil
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: c.Database, ConflictWindow: dict.ConflictWindowDuration(), MustExist: !create, Exclusive: create})
	return dict, store, err
}
