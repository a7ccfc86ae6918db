package conversation

import "slices"

// deliveryStatus records a provider's report on a message the session
// sent, unless it is a redelivery of one of the last few: providers
// redeliver callbacks, and a redelivery handled in another second would
// be a second analytics row that no merge collapses (the row's time is
// part of its key).
func (c *step) deliveryStatus(e DeliveryStatus) {
	s := c.s
	h := HashID(e.ProviderID + "\x00" + e.Status)
	if slices.Contains(s.deliveries, h) {
		c.emit(Dropped{Reason: DropDuplicate, ProviderID: e.ProviderID})
		return
	}
	if len(s.deliveries) >= deliveryRing {
		s.deliveries = append(s.deliveries[:0], s.deliveries[len(s.deliveries)-deliveryRing+1:]...)
	}
	s.deliveries = append(s.deliveries, h)
	s.lastDelivery = e.Status
	c.emit(LogDelivery(e))
}
