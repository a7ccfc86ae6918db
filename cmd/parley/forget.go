package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/internal/ids"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/wire"
)

const forgetUsage = `usage: parley forget --tenant T --phone +E164 --config FILE [--actor NAME] [--api URL]

Erases one customer (GDPR): queues the erasure of their session on
parley.inbound (when kafka.brokers is configured: the node that holds the
session drops it and tombstones it on parley.sessions), deletes their rows
from every ClickHouse table, waits until ClickHouse has applied the
deletes, and records the erasure in the audit table (who, when, tenant, a
hash of the number).

  --api URL   go through the running engine instead (DELETE
              URL/api/v1/tenants/T/customers/PHONE with the admin key in
              PARLEY_API_KEY), which drops the customer's live session at
              once, before deleting the rows.
`

// forget is `parley forget`.
func forget(args []string) error {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), forgetUsage) }
	path := fs.String("config", "", "config file (YAML)")
	tenant := fs.String("tenant", "", "tenant id")
	phone := fs.String("phone", "", "customer phone number, E.164 (+4915112345678)")
	actor := fs.String("actor", "", "who asks, for the audit (default cli:$USER)")
	api := fs.String("api", "", "base URL of a running engine, e.g. http://127.0.0.1:8080")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for ClickHouse to apply the deletes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" || *phone == "" {
		fs.Usage()
		return errors.New("forget needs --tenant and --phone")
	}
	if !e164.Valid(*phone) {
		return fmt.Errorf("--phone %q: %w", *phone, chsink.ErrInvalidPhone)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *api != "" {
		return forgetThroughAPI(ctx, *api, *tenant, *phone)
	}
	if *path == "" {
		return errors.New("forget needs --config FILE (or --api URL)")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	known := false
	for _, t := range cfg.Tenants {
		known = known || t.ID == *tenant
	}
	if !known {
		return fmt.Errorf("no tenant %q in %s", *tenant, *path)
	}
	if cfg.ClickHouse.Addr == "" {
		return errors.New("forget needs clickhouse.addr in the config")
	}
	if *actor == "" {
		*actor = "cli:" + currentUser()
	}
	storeCfg, err := engine.StoreConfig(cfg, cfg.ClickHouse.Addr, logger())
	if err != nil {
		return err
	}
	store, err := chsink.Open(ctx, storeCfg)
	if err != nil {
		return err
	}
	defer store.Close()
	// The session (live on a node, and on the parley.sessions changelog)
	// is erased through its own stream, like everything that changes it:
	// whichever node holds it, now or when one next starts, drops it and
	// leaves a tombstone. Store.Forget queues that first, then deletes
	// the rows.
	var queueSession func(context.Context) error
	if len(cfg.Kafka.Brokers) > 0 {
		sec, err := engine.KafkaSecurity(cfg)
		if err != nil {
			return err
		}
		queueSession = func(ctx context.Context) error {
			return forgetSession(ctx, cfg.Kafka.Brokers, sec, *tenant, *phone, *actor)
		}
	}
	e, err := store.Forget(ctx, *tenant, *phone, *actor, queueSession)
	if err != nil {
		return err
	}
	fmt.Printf("forgotten: tenant %s, phone hash %s, audit id %s\n", e.Tenant, e.PhoneHash, e.AuditID)
	printDeleted(e)
	if queueSession == nil {
		fmt.Fprintln(os.Stderr, "note: no kafka.brokers in the config, so the customer's session was not touched; use --api to go through the engine")
		return nil
	}
	fmt.Println("  session              erasure queued on parley.inbound (a tombstone on parley.sessions once handled)")
	return nil
}

// printDeleted lists the rows an erasure deleted, table by table.
func printDeleted(e *chsink.Erasure) {
	for _, table := range chsink.CustomerTables {
		fmt.Printf("  %-20s %d rows deleted\n", table, e.Deleted[table])
	}
}

// forgetSession queues the erasure of a customer's session.
func forgetSession(ctx context.Context, brokers []string, sec *bus.Security, tenant, phone, actor string) error {
	p := bus.NewProducer(brokers, bus.ProducerOptions{Security: sec})
	defer p.Close()
	in := &wire.Inbound{Id: "forget/" + ids.New(), Tenant: tenant, Phone: phone, Channel: "api", ReceivedAtMs: time.Now().UnixMilli(),
		Kind: &wire.Inbound_Command{Command: &wire.Command{Op: &wire.Command_Forget{Forget: &wire.Forget{}}, Operator: actor}}}
	v, err := proto.Marshal(in)
	if err != nil {
		return err
	}
	return p.Produce(ctx, kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(tenant, phone), Value: v})
}

// forgetThroughAPI asks a running engine, which also drops the live
// session.
func forgetThroughAPI(ctx context.Context, base, tenant, phone string) error {
	key := os.Getenv("PARLEY_API_KEY")
	if key == "" {
		return errors.New("--api needs an admin API key in PARLEY_API_KEY")
	}
	u := strings.TrimRight(base, "/") + "/api/v1/tenants/" + url.PathEscape(tenant) + "/customers/" + url.PathEscape(phone)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, res.Status, strings.TrimSpace(string(body)))
	}
	var e chsink.Erasure
	if err := json.Unmarshal(body, &e); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	fmt.Printf("forgotten (through %s, live session included): tenant %s, phone hash %s, audit id %s\n", base, e.Tenant, e.PhoneHash, e.AuditID)
	printDeleted(&e)
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}
