package conversation

import "slices"

// deliveryStatus records a provider's report on a message the session
// sent, unless it is a redelivery of one of the last few: providers
// redeliver callbacks, and a redelivery handled in another second would
// be a second analytics row that no merge collapses (the row's time is
// part of its key).
//
// Only the statuses the providers document become deliveries; any other
// word (a provider's new status, or a payload's invention) is dropped as
// DropUnknownStatus, which the shell counts and logs, so the deliveries
// table holds only statuses the dashboard knows.
func (c *step) deliveryStatus(e DeliveryStatus) {
	s := c.s
	if !DocumentedStatus(e.Status) {
		c.emit(Dropped{Reason: DropUnknownStatus, ProviderID: e.ProviderID})
		return
	}
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

// documentedStatuses are the delivery statuses Twilio documents for a
// message's status callback (MessageStatus) and Meta for the Cloud API's
// statuses webhook.
var documentedStatuses = map[string]bool{
	// Twilio
	"accepted": true, "scheduled": true, "canceled": true, "queued": true, "sending": true, "sent": true,
	"failed": true, "delivered": true, "undelivered": true, "receiving": true, "received": true, "read": true,
	"partially_delivered": true,
	// Meta (sent, delivered, read and failed are shared)
	"deleted": true,
}

// DocumentedStatus says whether a delivery status word is one the
// providers document.
func DocumentedStatus(status string) bool { return documentedStatuses[status] }
