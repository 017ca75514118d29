"""Admin commands: signed by the console, carried out by a party's own node."""

from exchange.admin.client import AdminClient
from exchange.admin.command import Action, AdminCommand, VerifiedCommand, open_command, seal_command

__all__ = [
    "Action",
    "AdminClient",
    "AdminCommand",
    "VerifiedCommand",
    "open_command",
    "seal_command",
]
