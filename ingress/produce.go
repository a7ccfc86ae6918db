package ingress

import (
	"context"
	"errors"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/wire"
)

// serveRoute runs a provider's route: accept, produce, acknowledge.
func (s *Server) serveRoute(ctx *fasthttp.RequestCtx, r channels.Route) {
	ins, answered := r.Accept(ctx, s.env)
	if answered {
		return
	}
	if len(ins) > 0 && !s.produceInbound(ctx, ins...) {
		return
	}
	if r.Ack != nil {
		r.Ack(ctx, ins)
	}
}

// produceInbound writes inbound records and waits for the broker's ack of
// every one of them. A webhook's records go in one call, so a Meta batch
// of many events costs one round trip, not one per event.
func (s *Server) produceInbound(ctx *fasthttp.RequestCtx, ins ...*wire.Inbound) bool {
	msgs := make([]kafka.Message, len(ins))
	for i, in := range ins {
		value, err := proto.Marshal(in)
		if err != nil {
			ctx.Error("encode: "+err.Error(), fasthttp.StatusInternalServerError)
			return false
		}
		msgs[i] = kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(in.Tenant, in.Phone), Value: value}
	}
	pctx, cancel := context.WithTimeout(context.Background(), s.o.ProduceTimeout)
	defer cancel()
	err := s.o.Producer.Produce(pctx, msgs...)
	if err != nil {
		s.o.Logger.Warn("inbound not acknowledged by the broker", "tenant", ins[0].Tenant, "records", len(ins), "err", err)
		ctx.Response.Header.Set("Retry-After", "5")
		msg := "broker unavailable, retry later"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "broker did not acknowledge in time, retry later"
		}
		ctx.Error(msg, fasthttp.StatusServiceUnavailable)
		return false
	}
	return true
}
