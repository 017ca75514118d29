"""The audit tests share the PostgreSQL fixtures of tests/conftest.py (pg_prefix, pg_schema)."""
