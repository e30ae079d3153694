package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"userapi/auth"
	"userapi/cache"
	"userapi/ratelimit"
	"userapi/store"
)

// The keys commands are the operator's way to make, list and revoke API
// keys. Keys are never shown again after create prints them.

// keyStore connects for a keys command, and returns the context its changes
// run in: the audit log names their actor cli. It never migrates: an
// operator's command must not change the schema behind a running fleet's
// back.
func keyStore(ctx context.Context, a *app) (context.Context, *store.APIKeys, func(), error) {
	pool, err := connect(ctx, a.cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pending, err := store.Pending(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	if len(pending) > 0 {
		pool.Close()
		return nil, nil, nil, fmt.Errorf("the database's schema is missing or out of date (%d migrations pending): run `userapi migrate` first", len(pending))
	}
	return store.WithActor(ctx, store.ActorCLI, ""), store.NewAPIKeys(pool), pool.Close, nil
}

func keysCreate(ctx context.Context, a *app, args []string) error {
	fs := newFlags("keys create", a.stderr)
	name := fs.String("name", "", "what the key is for, such as billing-service")
	scopes := fs.String("scopes", "", "comma-separated scopes: "+strings.Join(auth.Scopes, ", "))
	expires := fs.String("expires", "", "lifetime, such as 90d or 12h; none by default")
	rate := fs.String("rate", "", "the key's own rate budget, such as 1000/1m, instead of the service's default (each of reads and writes)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	budget, err := keyRate("keys create", *rate)
	if err != nil {
		return err
	}
	if *name == "" || len(*name) > 100 {
		return errors.New("keys create: --name is required, at most 100 characters")
	}
	if *scopes == "" {
		return errors.New("keys create: --scopes is required: " + strings.Join(auth.Scopes, ", "))
	}
	sc, err := auth.ParseScopes(*scopes)
	if err != nil {
		return fmt.Errorf("keys create: --scopes: %w", err)
	}
	expiresAt, err := keyExpiry("keys create", *expires)
	if err != nil {
		return err
	}
	ctx, repo, done, err := keyStore(ctx, a)
	if err != nil {
		return err
	}
	defer done()
	key, err := createKey(ctx, a.cfg, func(k auth.NewKey) error {
		_, err := repo.Create(ctx, store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: *name, Scopes: sc, ExpiresAt: expiresAt,
			RateLimit: budget.Limit, RatePeriod: budget.Period})
		return err
	})
	if err != nil {
		return err
	}
	prefix, _ := auth.PrefixOf(key)
	fmt.Fprintln(a.stdout, key)
	fmt.Fprintf(a.stderr, "Made API key %s (%s) with scopes %s%s. It is printed above and never shown again: store it now.\n",
		prefix, *name, strings.Join(sc, ","), rateNote(budget))
	return nil
}

// keysRoll makes a successor for a key: a new key with its name, scopes and
// rate, while the old key keeps working for the overlap. The old key's
// expiry reaches every instance like a revocation (the record changes, its
// cached copies are dropped); each instance then refuses it at that time.
func keysRoll(ctx context.Context, a *app, args []string) error {
	fs := newFlags("keys roll", a.stderr)
	expireOld := fs.String("expire-old", "24h", "how long the old key keeps working, such as 24h, 7d or 0s (at once)")
	expires := fs.String("expires", "", "the new key's lifetime, such as 90d; none by default")
	rate := fs.String("rate", "", "the new key's own rate budget, such as 1000/1m; by default the old key's")
	// The prefix comes first (keys roll PREFIX --expire-old 1h), which the
	// flag package would stop at: parse what follows it.
	if len(args) == 0 || !auth.ValidPrefix(args[0]) {
		return errors.New("keys roll: give the key's prefix, such as uak_3kq7zt2m (see userapi keys list)")
	}
	prefix := args[0]
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	overlap, err := overlapOf(*expireOld)
	if err != nil {
		return fmt.Errorf("keys roll: --expire-old: %w", err)
	}
	expiresAt, err := keyExpiry("keys roll", *expires)
	if err != nil {
		return err
	}
	budget, err := keyRate("keys roll", *rate)
	if err != nil {
		return err
	}
	ctx, repo, done, err := keyStore(ctx, a)
	if err != nil {
		return err
	}
	defer done()
	var old, made store.APIKey
	key, err := createKey(ctx, a.cfg, func(k auth.NewKey) (err error) {
		old, made, err = repo.Roll(ctx, prefix, store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, ExpiresAt: expiresAt,
			RateLimit: budget.Limit, RatePeriod: budget.Period}, overlap)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("keys roll: no key has the prefix %s", prefix)
	case errors.Is(err, store.ErrKeyRolled):
		return fmt.Errorf("keys roll: %s was rolled already: roll its successor instead (see userapi keys list)", prefix)
	case errors.Is(err, store.ErrKeyInactive):
		return fmt.Errorf("keys roll: %s is revoked or expired: make a new key with keys create", prefix)
	case err != nil:
		return err
	}
	fmt.Fprintln(a.stdout, key)
	rolled := fmt.Sprintf("Rolled %s (%s) to %s, with scopes %s%s. The new key is printed above and never shown again: store it now.",
		old.Prefix, old.Name, made.Prefix, strings.Join(made.Scopes, ","), rateNote(ratelimit.Policy{Limit: made.RateLimit, Period: made.RatePeriod}))
	if err := forget(ctx, a.cfg, old.Prefix); err != nil {
		fmt.Fprintf(a.stderr, "%s %s keeps working until %s; Redis did not answer (%v), so instances that reach it learn of the expiry from the database within USERAPI_INVALIDATION_POLL.\n",
			rolled, old.Prefix, old.ExpiresAt.Format(time.RFC3339), err)
		return nil
	}
	fmt.Fprintf(a.stderr, "%s %s keeps working until %s, then every instance refuses it.\n", rolled, old.Prefix, old.ExpiresAt.Format(time.RFC3339))
	return nil
}

// keyExpiry reads --expires: zero for none.
func keyExpiry(cmd, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := lifetime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: --expires: %w", cmd, err)
	}
	return time.Now().Add(d), nil
}

// keyRate reads --rate: the zero Policy for the service's default.
func keyRate(cmd, s string) (ratelimit.Policy, error) {
	if s == "" {
		return ratelimit.Policy{}, nil
	}
	p, err := ratelimit.ParsePolicy(s)
	if err != nil || p.Off() {
		return ratelimit.Policy{}, fmt.Errorf("%s: --rate: must be N/DURATION, such as 1000/1m", cmd)
	}
	return p, nil
}

func rateNote(p ratelimit.Policy) string {
	if p.Off() {
		return ""
	}
	return " and its own rate " + p.String()
}

// overlapOf reads --expire-old: like a lifetime, but 0s (no overlap) is
// allowed.
func overlapOf(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d == 0 {
		return 0, nil
	}
	return lifetime(s)
}

func keysList(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return errUsage
	}
	ctx, repo, done, err := keyStore(ctx, a)
	if err != nil {
		return err
	}
	defer done()
	list, err := repo.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tNAME\tSCOPES\tRATE\tCREATED\tLAST USED\tEXPIRES\tSTATE\tROLLED")
	now := time.Now()
	successor := map[string]string{}
	for _, k := range list {
		if k.Replaces != "" {
			successor[k.Replaces] = k.Prefix
		}
	}
	for _, k := range list {
		state := "active"
		switch {
		case !k.RevokedAt.IsZero():
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
			state = "expired"
		}
		rate := "default"
		if k.RateLimit > 0 {
			rate = ratelimit.Policy{Limit: k.RateLimit, Period: k.RatePeriod}.String()
		}
		var rolled []string
		if k.Replaces != "" {
			rolled = append(rolled, "from "+k.Replaces)
		}
		if next := successor[k.Prefix]; next != "" {
			rolled = append(rolled, "to "+next)
		}
		if len(rolled) == 0 {
			rolled = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Prefix, k.Name, strings.Join(k.Scopes, ","), rate,
			k.CreatedAt.Format(time.RFC3339), orNever(k.LastUsedAt), orNever(k.ExpiresAt), state, strings.Join(rolled, ", "))
	}
	return tw.Flush()
}

func keysRevoke(ctx context.Context, a *app, args []string) error {
	if len(args) != 1 || !auth.ValidPrefix(args[0]) {
		return errors.New("keys revoke: give the key's prefix, such as uak_3kq7zt2m (see userapi keys list)")
	}
	ctx, repo, done, err := keyStore(ctx, a)
	if err != nil {
		return err
	}
	defer done()
	k, err := repo.Revoke(ctx, args[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("keys revoke: no key has the prefix %s", args[0])
	}
	if err != nil {
		return err
	}
	// The revocation is recorded for the instances in its transaction;
	// deleting the cached record here only saves them a round trip.
	if err := forget(ctx, a.cfg, k.Prefix); err != nil {
		fmt.Fprintf(a.stderr, "Revoked %s (%s). Redis did not answer (%v): instances that reach it apply the revocation from the database within USERAPI_INVALIDATION_POLL, and the others check keys in the database meanwhile.\n", k.Prefix, k.Name, err)
		return nil
	}
	fmt.Fprintf(a.stderr, "Revoked %s (%s): every instance refuses it from now on.\n", k.Prefix, k.Name)
	return nil
}

// createKey makes a key, has save store it (save returns
// store.ErrConflict when its prefix is taken), and returns the key.
func createKey(ctx context.Context, cfg config, save func(auth.NewKey) error) (string, error) {
	for range 3 { // a prefix clash (40 random bits) is rare; try again
		k := auth.Generate()
		err := save(k)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return "", err
		}
		// An instance may remember this prefix as unknown (someone tried
		// it): forget that, or the new key fails until the memory expires.
		_ = forget(ctx, cfg, k.Prefix)
		return k.Key, nil
	}
	return "", errors.New("could not find a free prefix for the new key; try again")
}

func forget(ctx context.Context, cfg config, prefix string) error {
	if cfg.RedisURL == "" {
		return nil
	}
	return cache.Forget(ctx, cfg.RedisURL, cfg.CachePrefix, prefix)
}

// devKey prints the development key kept in file, making a new one when
// the file is missing or its key is no longer valid (revoked, expired, or
// from another database).
func devKey(ctx context.Context, cfg config, repo *store.APIKeys, file string, stdout io.Writer) error {
	if b, err := os.ReadFile(file); err == nil {
		key := strings.TrimSpace(string(b))
		if _, err := auth.NewChecker(repo, noTouch{}, nil).Check(ctx, key); err == nil {
			printDevKey(stdout, cfg, key, "kept in "+file)
			return nil
		}
	}
	key, err := createKey(ctx, cfg, func(k auth.NewKey) error {
		_, err := repo.Create(ctx, store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "development", Scopes: []string{auth.ScopeAdmin}})
		return err
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		return err
	}
	printDevKey(stdout, cfg, key, "made just now, and kept in "+file+" for the next start")
	return nil
}

func printDevKey(w io.Writer, cfg config, key, how string) {
	host := cfg.Addr
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	fmt.Fprintf(w, `
Development API key (scope admin, %s):

    %s

Try it:

    curl -H "Authorization: Bearer %s" http://%s/users

In the docs at http://%s/docs, press Authorize and paste the key.

`, how, key, key, host, host)
}

// noTouch checks a key without recording its use.
type noTouch struct{}

func (noTouch) Touch(context.Context, string) error { return nil }

// lifetime reads a key's lifetime: a Go duration (12h) or whole days (90d).
func lifetime(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days such as 90d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a lifetime such as 90d or 12h", s)
		}
	}
	if d <= 0 || d > 10*365*24*time.Hour {
		return 0, fmt.Errorf("%q must be from 1s to 10 years", s)
	}
	return d, nil
}

func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
