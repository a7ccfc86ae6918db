package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// roles say which part of the engine a CPU sample belongs to: the first
// role with a function on the sample's stack (inlined frames included)
// takes it. The order matters: a business-system call made by a session
// actor is the sessions' cost, the HTTP connection loops it leaves
// behind are net/http's.
type role struct {
	name string
	re   *regexp.Regexp
}

var roles = []role{
	{"GC (background mark workers)", regexp.MustCompile(`^runtime\.gcBgMarkWorker`)},
	// Not by the stack: a sample whose innermost Parley function is
	// bus.(*Consumer).Run itself (its poll loop, not the handler it calls).
	{consumerLoop, nil},
	{"ingress (HTTP, verify, produce and wait)", regexp.MustCompile(`valyala/fasthttp\.\(\*(Server|workerPool)\)|parley/ingress\.`)},
	{"broker (embedded kfake)", regexp.MustCompile(`franz-go/pkg/kfake`)},
	{"sessions: business system calls", regexp.MustCompile(`parley/backend/httpapi\.`)},
	{"sessions: brain (rules)", regexp.MustCompile(`parley/brain`)},
	{"sessions: actor, core, transaction", regexp.MustCompile(`parley/actors\.|parley/conversation\.|parley/bus\.\(\*Processor\)|protoactor-go`)},
	{"sender (Twilio API)", regexp.MustCompile(`parley/sinks/delivery\.|parley/channels/twilio\.|twilio/twilio-go`)},
	{"ClickHouse sink", regexp.MustCompile(`parley/sinks/clickhouse\.|ClickHouse/`)},
	{"triggers (tenant webhooks)", regexp.MustCompile(`parley/sinks/webhooks\.`)},
	{"replies tail, API", regexp.MustCompile(`parley/bus\.Tail|parley/api\.`)},
	{"kgo client (background)", regexp.MustCompile(`franz-go/pkg/kgo`)},
	{"kafka-go client (background)", regexp.MustCompile(`segmentio/kafka-go`)},
	{"net/http client: dials (new connections)", regexp.MustCompile(`^net/http\.\(\*Transport\)\.dial`)},
	{"net/http client: connection read/write loops", regexp.MustCompile(`^net/http\.`)},
	{"runtime, other", regexp.MustCompile(`.`)},
}

const consumerLoop = "consumers' poll loop (bus.Consumer: slots, polls)"

var parleyFunc = regexp.MustCompile(`^github\.com/parleyhq/parley/`)

// roleCPU is one role's share of a CPU profile.
type roleCPU struct {
	Role    string  `json:"role"`
	Seconds float64 `json:"seconds"`
	Share   float64 `json:"share"`
	// PerReq is µs of CPU per accepted webhook of the window.
	PerReq float64 `json:"us_per_req"`
}

// cpuByRole reads a CPU profile written by runtime/pprof and splits its
// samples by role.
func cpuByRole(path string, accepted int64) ([]roleCPU, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	p, err := parseProfile(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The role of each location, by the first role any of its frames
	// names, cached; a sample's role is the best (lowest) of its
	// locations'.
	funcRole := map[uint64]int{}
	roleOf := func(fn uint64) int {
		if r, ok := funcRole[fn]; ok {
			return r
		}
		name := p.strings[p.funcName[fn]]
		r := len(roles) - 1
		for i, ro := range roles {
			if ro.re != nil && ro.re.MatchString(name) {
				r = i
				break
			}
		}
		funcRole[fn] = r
		return r
	}
	loopRole := slices.IndexFunc(roles, func(r role) bool { return r.name == consumerLoop })
	ns := make([]int64, len(roles))
	var total int64
	for _, s := range p.samples {
		best := len(roles) - 1
		innermost := ""
		// Leaf to root: locations in order, each one's inlined frames
		// innermost first.
		for _, loc := range s.locs {
			for _, fn := range p.locFuncs[loc] {
				best = min(best, roleOf(fn))
				if name := p.strings[p.funcName[fn]]; innermost == "" && parleyFunc.MatchString(name) {
					innermost = name
				}
			}
		}
		if innermost == "github.com/parleyhq/parley/bus.(*Consumer).Run" && best > loopRole {
			best = loopRole
		}
		ns[best] += s.value
		total += s.value
	}
	if total == 0 {
		return nil, errors.New("empty profile")
	}
	out := make([]roleCPU, 0, len(roles))
	for i, ro := range roles {
		if ns[i] == 0 {
			continue
		}
		r := roleCPU{Role: ro.name, Seconds: float64(ns[i]) / 1e9, Share: float64(ns[i]) / float64(total)}
		if accepted > 0 {
			r.PerReq = float64(ns[i]) / 1e3 / float64(accepted)
		}
		out = append(out, r)
	}
	return out, nil
}

// profile is what cpuByRole needs of a pprof profile (profile.proto).
type profile struct {
	strings  []string
	funcName map[uint64]int64    // function id -> string index
	locFuncs map[uint64][]uint64 // location id -> function ids, inlined frames included
	samples  []sample
}

type sample struct {
	locs  []uint64
	value int64 // CPU nanoseconds
}

func parseProfile(b []byte) (*profile, error) {
	p := &profile{funcName: map[uint64]int64{}, locFuncs: map[uint64][]uint64{}}
	var (
		types      [][2]int64 // sample_type: (type, unit) string indexes
		rawSamples [][]byte
	)
	err := fields(b, func(num protowire.Number, v uint64, msg []byte) error {
		switch num {
		case 1: // sample_type
			var t [2]int64
			err := fields(msg, func(n protowire.Number, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					t[n-1] = int64(v)
				}
				return nil
			})
			types = append(types, t)
			return err
		case 2: // sample
			rawSamples = append(rawSamples, msg)
		case 4: // location
			var id uint64
			var funcs []uint64
			err := fields(msg, func(n protowire.Number, v uint64, line []byte) error {
				switch n {
				case 1:
					id = v
				case 4:
					return fields(line, func(n protowire.Number, v uint64, _ []byte) error {
						if n == 1 {
							funcs = append(funcs, v)
						}
						return nil
					})
				}
				return nil
			})
			p.locFuncs[id] = funcs
			return err
		case 5: // function
			var id uint64
			var name int64
			err := fields(msg, func(n protowire.Number, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			p.funcName[id] = name
			return err
		case 6: // string_table
			p.strings = append(p.strings, string(msg))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The CPU value: the sample type named "cpu" (nanoseconds); the last
	// one otherwise.
	vi := len(types) - 1
	for i, t := range types {
		if int(t[0]) < len(p.strings) && p.strings[t[0]] == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, errors.New("no sample types")
	}
	for _, raw := range rawSamples {
		var s sample
		var values []int64
		err := fields(raw, func(n protowire.Number, v uint64, packed []byte) error {
			switch n {
			case 1, 2:
				add := func(x uint64) {
					if n == 1 {
						s.locs = append(s.locs, x)
					} else {
						values = append(values, int64(x))
					}
				}
				if packed == nil {
					add(v)
					return nil
				}
				for len(packed) > 0 {
					x, m := protowire.ConsumeVarint(packed)
					if m < 0 {
						return protowire.ParseError(m)
					}
					add(x)
					packed = packed[m:]
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if vi < len(values) {
			s.value = values[vi]
		}
		p.samples = append(p.samples, s)
	}
	for id, n := range p.funcName {
		if n < 0 || int(n) >= len(p.strings) {
			return nil, fmt.Errorf("function %d: bad name index %d", id, n)
		}
	}
	return p, nil
}

// fields calls fn for each field of a protobuf message: varints with v,
// length-delimited fields with their bytes (nil for other wire types).
func fields(b []byte, fn func(num protowire.Number, v uint64, msg []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v   uint64
			msg []byte
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			msg, n = protowire.ConsumeBytes(b)
			if msg == nil {
				msg = []byte{}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := fn(num, v, msg); err != nil {
				return err
			}
		}
	}
	return nil
}
