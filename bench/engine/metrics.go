package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/sinks/webhooks"
	"github.com/parleyhq/parley/wire"
)

// The engine's own figures, from its /metrics (Prometheus text format):
// the session role's transactions and the other roles' consumer lag.

// metrics is one scrape: value by series ("name{labels}" as written).
type metrics map[string]float64

func scrape(ctx context.Context, addr string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	m := metrics{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "parley_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the series of name whose labels contain every one of want
// (`group="sender"`).
func (m metrics) sum(name string, want ...string) float64 {
	var t float64
	for k, v := range m {
		series, labels, _ := strings.Cut(k, "{")
		if series != name {
			continue
		}
		ok := true
		for _, w := range want {
			if !strings.Contains(labels, w) {
				ok = false
				break
			}
		}
		if ok {
			t += v
		}
	}
	return t
}

// lagGroups are the consumer groups whose lag the engine exports (the
// session role's transactional consumer exports none; the bench's backlog
// stands for it).
var lagGroups = []string{wire.GroupSender, wire.GroupSink, webhooks.Group}

type lagPoint struct {
	T   float64            `json:"t_s"`
	Lag map[string]float64 `json:"lag"`
}

// lagSampler scrapes the consumer lag every second until stopped.
type lagSampler struct {
	mu     sync.Mutex
	points []lagPoint
	stop   chan struct{}
	done   chan struct{}
}

func sampleLag(addr string, t0 time.Time) *lagSampler {
	s := &lagSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-tick.C:
				m, err := scrape(context.Background(), addr)
				if err != nil {
					continue
				}
				p := lagPoint{T: now.Sub(t0).Seconds(), Lag: map[string]float64{}}
				for _, g := range lagGroups {
					p.Lag[g] = m.sum("parley_consumer_lag", `group="`+g+`"`)
				}
				s.mu.Lock()
				s.points = append(s.points, p)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *lagSampler) finish() []lagPoint {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.points
}
