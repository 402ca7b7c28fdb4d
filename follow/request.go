package follow

import (
	"context"
	"net/http"
)

// NewRequest returns the GET request a Follower configured by cfg sends
// for cursor (PROTOCOL 2): the URL with the cursor placed in cfg's style
// ({since} template, SinceParam, or last path segment), Basic auth, cfg's
// headers, Accept and User-Agent, and the client to send it with: cfg's,
// held to the Follower's redirect rules. display is its URL for output,
// with credentials redacted. The error, for an unusable cfg.URL, names the
// URL redacted.
func NewRequest(ctx context.Context, cfg Config, cursor Order) (req *http.Request, client *http.Client, display string, err error) {
	ep, err := newEndpoint(cfg.URL, cfg.SinceParam, cfg.User, cfg.Header, cfg.Redact)
	if err != nil {
		return nil, nil, "", err
	}
	if req, err = ep.request(ctx, cursor); err != nil {
		return nil, nil, "", err
	}
	client = cfg.Client
	if client == nil {
		if client, err = NewClient(TLSOptions{}); err != nil {
			return nil, nil, "", err
		}
	}
	return req, ep.guard(client), ep.show(req.URL.String()), nil
}
