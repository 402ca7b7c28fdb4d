package follow

import (
	"context"
	"net/http"
)

// NewRequest returns the GET request a Follower configured by cfg sends
// for cursor (PROTOCOL 2): the URL with the cursor placed in cfg's style
// ({since} template, SinceParam, or last path segment), Basic auth, cfg's
// headers, Accept and User-Agent. display is its URL for output, with
// credentials redacted. The error, for an unusable cfg.URL, names the URL
// redacted.
func NewRequest(ctx context.Context, cfg Config, cursor Order) (req *http.Request, display string, err error) {
	ep, err := newEndpoint(cfg.URL, cfg.SinceParam, cfg.User, cfg.Header)
	if err != nil {
		return nil, "", err
	}
	if req, err = ep.request(ctx, cursor); err != nil {
		return nil, "", err
	}
	display = Redact(req.URL.String())
	if ep.hasAuth {
		display = redactUser(display, ep.user)
	}
	return req, display, nil
}
