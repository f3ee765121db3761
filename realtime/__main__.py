"""``python -m realtime``: the same as the ``prnet-live`` command (realtime.cli)."""

from realtime.cli import command

command()
