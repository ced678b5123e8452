package httpx

// PeakInFlightBytes is the most of c's in-flight budget ever held at once.
func PeakInFlightBytes(c *Client) int64 { return c.budget.peak.Load() }
