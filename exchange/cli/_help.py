"""How ``--help`` shows options: no type label on a flag, which takes no value."""

from __future__ import annotations

from typing import Any

import typer.core


def hide_flag_types() -> None:
    """Show no ``<bool>`` beside ``--wait``, ``--json`` or ``--help``.

    Typer labels every option with its Python type; for a flag that label reads as a value
    to type (``--wait <bool>``), which it is not. Options with a value keep their label.
    """
    original = typer.core.TyperOption.display_type_rich
    if getattr(original, "_exchange_patched", False):
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._exchange_patched = True  # type: ignore[attr-defined]
    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
