package store

// WebhookDelivery is a webhook delivery's record, for the command line.
type WebhookDelivery struct {
	ID, EndpointID, Seq int64
	Event, State        string
	Attempts            int
	LastError           string
}
