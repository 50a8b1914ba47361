"""The auth-callout wire format: nkeys, xkeys, the NATS JWT codec, request and response. Pure."""
