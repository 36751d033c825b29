"""Pieces every ``workbench`` command group shares: options, error output, tables.

Errors print their message and hint (or their JSON with ``--json``) and exit
with status 1, never a traceback.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import click

from workbench.config import Settings, load_settings
from workbench.errors import WorkbenchError
from workbench.records import to_dict


def workspace_option(fn: Callable) -> Callable:
    return click.option(
        "--workspace",
        "-w",
        type=click.Path(file_okay=False),
        default=None,
        help="The workspace (a folder inside a git + DVC repository). Default: the current folder.",
    )(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")(fn)


def fail(exc: WorkbenchError, as_json: bool = False) -> NoReturn:
    """Print an error for a person (or as JSON) and exit with status 1."""
    if as_json:
        click.echo(json.dumps(exc.to_dict(), indent=2))
    else:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
    sys.exit(1)


def handles_errors(fn: Callable) -> Callable:
    """Turn a WorkbenchError into a readable message (or JSON) and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            fail(exc, bool(kwargs.get("as_json")))

    return wrapper


def settings_for(workspace: str | None, **overrides: Any) -> Settings:
    return load_settings(workspace, **overrides)


def print_json(records: Any) -> None:
    click.echo(json.dumps(to_dict(records), indent=2))


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ms(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return _dt.datetime.fromtimestamp(timestamp / 1000).strftime("%Y-%m-%d %H:%M")


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain text table with columns padded to their widest cell."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
