"""``autonoc audit ...``: read the append-only audit log.

Mount it on the main app with ``app.add_typer(audit_app, name="audit")``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated

import typer

from autonoc.cli_common import JsonOpt, err, fail, load_settings
from autonoc.core.audit import AuditEntry, AuditFollower, AuditLog
from autonoc.core.errors import AutonocError

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="The append-only audit log: every dry-run, approval, step, result and verification.",
    no_args_is_help=True,
)

#: Seconds between two looks at the table with --follow.
FOLLOW_INTERVAL_S = 1.0

# Subjects and actors can carry device text (interface names, ifAlias): never
# let it move the cursor or recolour an operator's terminal.
_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "?")


def _plain(text: str) -> str:
    return text.translate(_CONTROL)


def _line(entry: AuditEntry, as_json: bool) -> str:
    if as_json:
        return json.dumps(entry.to_json(), default=str)
    details = json.dumps(entry.details, default=str, sort_keys=True)  # escapes control characters
    return (
        f"{entry.ts:%Y-%m-%d %H:%M:%S} #{entry.id} {_plain(entry.actor)} "
        f"{_plain(entry.action)} {_plain(entry.subject)} {details}"
    )


def _write(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()


@audit_app.command("tail")
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="newest N entries")] = 50,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="keep printing new entries as they land (Ctrl-C ends)"),
    ] = False,
    subject: Annotated[
        str | None, typer.Option(help="only this subject, e.g. pe1:eth1 or incident:7")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="only this action, e.g. playbook_started")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the newest audit entries, oldest of them first; --json: one object per line.

    Each line: time (UTC), #id, actor, action, subject, details as JSON.
    """
    from autonoc.core.db import check_database, make_engine, upgrade

    try:
        settings = load_settings()
        engine = make_engine(settings)
        check_database(engine)
        upgrade(engine)
        log = AuditLog(engine)
        start = log.last_id()
        recent = log.entries(limit=lines, subject=subject, action=action, up_to=start)
        _write([_line(e, as_json) for e in reversed(recent)])
        if not recent and not follow and not as_json and lines:
            err.print("no audit entries" + (" match" if subject or action else " yet"))
        if not follow:
            return
        follower = AuditFollower(log, start, subject=subject, action=action)
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            _write([_line(e, as_json) for e in follower.poll()])
    except AutonocError as exc:
        raise fail(exc) from exc
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:
        # `autonoc audit tail -f | head`: the reader left, which is no error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
