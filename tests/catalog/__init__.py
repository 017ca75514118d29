"""Tests of the service catalog: the loader, the city catalog, typed payloads."""
