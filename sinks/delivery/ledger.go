package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// sentEntry is one ledger record's value: a message the provider accepted.
// It holds what the sender needs to report the send again without sending
// it again.
type sentEntry struct {
	ProviderID string `json:"provider_id"`
	Channel    string `json:"channel"`
	Template   bool   `json:"template,omitempty"`
	Fallback   bool   `json:"fallback,omitempty"` // a template sent for free text outside the window
	AtMs       int64  `json:"at_ms"`
}

// ledger is the sender's memory of what it sent, so that a message is sent
// once even when the sender dies between the provider's answer and the
// offset commit, or when its partition moves to another sender in between.
//
// Every accepted send is written (acks=all) to a compacted topic, keyed by
// the outbound id, in the partition with the number of the outbound
// record's own partition, before the outbound offset may be committed.
// Right before each send attempt the sender reads that ledger partition up
// to a high watermark taken after it asked (fresh) and looks the outbound
// id up: whatever this process sent before it died, or an earlier owner of
// the partition sent — even one still finishing its records after a
// rebalance — is then known, and only reported, not sent again.
//
// Only the ledger partitions of the outbound partitions this process
// received records from are read, and only on demand: after a start or a
// rebalance that is a catch-up from the partition's beginning (48 hours of
// sends at most); in steady state one fetch of what was written since,
// shared by every record that asked before it started.
type ledger struct {
	topic      string
	partitions int
	retention  time.Duration
	client     *kafka.Client
	w          *recordWriter
	log        *slog.Logger

	mu      sync.Mutex
	entries map[string]sentEntry
	parts   map[int]*ledgerPart
}

// ledgerPart is the read position in one ledger partition.
type ledgerPart struct {
	// turn admits one catch-up at a time; those waiting behind it are
	// usually satisfied by it.
	turn     chan struct{}
	next     int64     // next offset to read; guarded by turn
	syncedAt time.Time // start of the last complete catch-up; guarded by turn
}

func newLedger(client *kafka.Client, w *recordWriter, topic string, partitions int, retention time.Duration, log *slog.Logger) *ledger {
	return &ledger{
		topic:      topic,
		partitions: partitions,
		retention:  retention,
		client:     client,
		w:          w,
		log:        log,
		entries:    map[string]sentEntry{},
		parts:      map[int]*ledgerPart{},
	}
}

func (l *ledger) partitionOf(outboundPartition int) int {
	return outboundPartition % l.partitions
}

// get returns the entry of an outbound id, if it was sent.
func (l *ledger) get(id string) (sentEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	return e, ok
}

// record is the ledger record of an entry, to be written with acks=all;
// remember it once written.
func (l *ledger) record(outboundPartition int, id string, e sentEntry) (kafka.Message, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return kafka.Message{}, err
	}
	return kafka.Message{Topic: l.topic, Partition: l.partitionOf(outboundPartition), Key: []byte(id), Value: v}, nil
}

// remember notes an entry this process wrote.
func (l *ledger) remember(id string, e sentEntry) {
	l.mu.Lock()
	l.entries[id] = e
	l.mu.Unlock()
}

// put writes an entry and remembers it.
func (l *ledger) put(ctx context.Context, outboundPartition int, id string, e sentEntry) error {
	m, err := l.record(outboundPartition, id, e)
	if err != nil {
		return err
	}
	if err := l.w.write(ctx, m); err != nil {
		return fmt.Errorf("ledger write: %w", err)
	}
	l.remember(id, e)
	return nil
}

func (l *ledger) part(p int) *ledgerPart {
	l.mu.Lock()
	defer l.mu.Unlock()
	lp := l.parts[p]
	if lp == nil {
		lp = &ledgerPart{turn: make(chan struct{}, 1), next: -1}
		l.parts[p] = lp
	}
	return lp
}

// fresh returns once the ledger partition of outboundPartition has been
// read up to a high watermark observed after since: every entry
// acknowledged before since is then in memory.
func (l *ledger) fresh(ctx context.Context, outboundPartition int, since time.Time) error {
	p := l.partitionOf(outboundPartition)
	lp := l.part(p)
	select {
	case lp.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-lp.turn }()
	if lp.syncedAt.After(since) {
		return nil // a catch-up that started after since has finished
	}
	start := time.Now()
	if err := l.catchUp(ctx, p, lp); err != nil {
		return err
	}
	lp.syncedAt = start
	return nil
}

// catchUp reads partition p from lp.next up to its high watermark.
func (l *ledger) catchUp(ctx context.Context, p int, lp *ledgerPart) error {
	if lp.next < 0 {
		first, err := l.firstOffset(ctx, p)
		if err != nil {
			return err
		}
		lp.next = first
	}
	stuck := 0
	for {
		resp, err := l.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: l.topic, Partition: p, Offset: lp.next,
			MinBytes: 0, MaxBytes: 8 << 20, MaxWait: 5 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("ledger fetch: %w", err)
		}
		if resp.Error != nil {
			if errors.Is(resp.Error, kafka.OffsetOutOfRange) && stuck < 3 {
				// Retention removed what we were about to read, or the
				// topic was recreated: start again from its beginning.
				stuck++
				first, err := l.firstOffset(ctx, p)
				if err != nil {
					return err
				}
				lp.next = first
				continue
			}
			return fmt.Errorf("ledger fetch: %w", resp.Error)
		}
		before := lp.next
		if err := l.apply(resp.Records, lp); err != nil {
			return err
		}
		if lp.next >= resp.HighWatermark {
			return nil
		}
		if lp.next == before {
			// Nothing readable below the high watermark (e.g. only
			// control records): do not spin on it.
			if stuck++; stuck >= 3 {
				l.log.Warn("ledger partition has unreadable records; skipping to the high watermark",
					"topic", l.topic, "partition", p, "from", lp.next, "to", resp.HighWatermark)
				lp.next = resp.HighWatermark
				return nil
			}
		} else {
			stuck = 0
		}
	}
}

// apply reads a fetch's records into memory.
func (l *ledger) apply(rs kafka.RecordReader, lp *ledgerPart) error {
	cutoff := time.Now().Add(-l.retention).UnixMilli()
	for {
		r, err := rs.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ledger read: %w", err)
		}
		if r.Offset < lp.next {
			continue // batches may start before the offset asked for
		}
		lp.next = r.Offset + 1
		if r.Key == nil {
			continue
		}
		key, err := kafka.ReadAll(r.Key)
		if err != nil {
			return err
		}
		id := string(key)
		if r.Value == nil {
			l.mu.Lock()
			delete(l.entries, id) // a tombstone
			l.mu.Unlock()
			continue
		}
		v, err := kafka.ReadAll(r.Value)
		if err != nil {
			return err
		}
		var e sentEntry
		if err := json.Unmarshal(v, &e); err != nil || e.ProviderID == "" {
			l.log.Warn("ignoring unreadable ledger record", "topic", l.topic, "offset", r.Offset, "err", err)
			continue
		}
		if e.AtMs < cutoff {
			continue
		}
		l.mu.Lock()
		l.entries[id] = e
		l.mu.Unlock()
	}
}

func (l *ledger) firstOffset(ctx context.Context, p int) (int64, error) {
	resp, err := l.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{l.topic: {kafka.FirstOffsetOf(p)}},
	})
	if err != nil {
		return 0, fmt.Errorf("ledger offsets: %w", err)
	}
	for _, po := range resp.Topics[l.topic] {
		if po.Partition == p {
			if po.Error != nil {
				return 0, fmt.Errorf("ledger offsets: %w", po.Error)
			}
			return po.FirstOffset, nil
		}
	}
	return 0, fmt.Errorf("ledger offsets: no answer for partition %d", p)
}

// prune forgets entries older than the retention: the topic forgets them
// too, and no outbound record is redelivered that late.
func (l *ledger) prune(now time.Time) int {
	cutoff := now.Add(-l.retention).UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id, e := range l.entries {
		if e.AtMs < cutoff {
			delete(l.entries, id)
			n++
		}
	}
	return n
}

func (l *ledger) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// partitionCount is the number of partitions of topic, 0 if it does not
// exist (yet).
func partitionCount(ctx context.Context, client *kafka.Client, topic string) (int, error) {
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		if t.Name == topic {
			if t.Error != nil {
				if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
					return 0, nil
				}
				return 0, t.Error
			}
			return len(t.Partitions), nil
		}
	}
	return 0, nil
}

func msString(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
