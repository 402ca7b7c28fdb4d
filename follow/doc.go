// Package follow is a client of the lockstep protocol: it asks an HTTP
// endpoint for every record changed since a cursor, decodes the stream of
// JSON objects it answers with, and asks again from the new cursor after
// any disconnect.
//
// A Decoder reads records from any framing (newlines, CRLF, blank-line
// heartbeats, or nothing at all between objects), across any read
// boundary, keeping each record's exact bytes and byte offset; it never
// takes a record cut off by the end of input; ParseRecord and a Parser
// take one record at a time (the lines of a file). A Follower adds the
// protocol: the three ways of sending the cursor, exact order values
// (Order), dropping what is re-delivered at the cursor, jittered backoff
// and Retry-After, caught-up and stall detection, and full resyncs after
// 410 Gone. It reports everything to one handler, on the goroutine that
// called Run; applying records to a table is the handler's (see package
// state).
//
// Errors name the endpoint with credentials redacted: a *StatusError for
// an HTTP status, a *BadRecordError (byte offset and up to 200 bytes of
// input) for input that is not a record, ErrGone for 410 at cursor 0, a
// *RedirectError for a redirect it will not follow. Redirects follow
// PROTOCOL 3 whatever client the Follower is given: never from https to
// http, no Referer, and the user's headers and credentials only at the
// endpoint's own origin.
package follow
