"""The one way to put a pydantic validation failure into words."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError, whole: str) -> tuple[str, str]:
    """The first error as (dotted field path, or ``whole`` for the input itself, message)."""
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or whole, first["msg"]
