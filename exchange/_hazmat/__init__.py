"""Dangerous primitives: raw XML parsing, canonicalisation and raw signatures.

Nothing outside ``exchange.signing`` and ``exchange.codec`` should import from here. These
functions check nothing about trust; the safe API is ``exchange.signing.seal`` / ``unseal``.
"""
