"""Tests of the party node."""

from __future__ import annotations
