"""Tests of the party stores: one contract, two backends."""

from __future__ import annotations
