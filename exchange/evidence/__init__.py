"""Evidence bundles: one request's envelopes and audit records, exported and checked offline.

Above both ``node`` (whose store it reads) and ``audit`` (whose records it carries).
"""
