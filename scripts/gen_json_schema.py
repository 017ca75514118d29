"""Write ``exchange/data/schemas/envelope.schema.json`` from the envelope model.

Run it after changing the model.

Usage: ``python scripts/gen_json_schema.py [--check]``; ``--check`` exits 1 if the file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from exchange.envelope.model import Envelope

SCHEMA_ID = "urn:kazan:exchange:envelope:1"
TARGET = Path(__file__).resolve().parents[1] / "exchange/data/schemas/envelope.schema.json"


def build_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the JSON envelope, as ``encode_json`` writes it."""
    generated = Envelope.model_json_schema(mode="serialization")
    generated.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Kazan exchange envelope (JSON wire format)",
        **generated,
    }


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write the schema, or with ``--check`` report whether the committed one is current."""
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale; run python scripts/gen_json_schema.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
