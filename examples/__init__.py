"""Files to start from: unsigned envelopes, request payloads, a handler module to copy."""
