"""Tests of the connectors for departmental systems."""
