"""``shipyard doctor``: where the stores live, whether they answer, writes waiting in the offline
spool (and why they could not be sent), and where each setting came from.

Doctor has no side effects: a SQLite file or artifact folder that does not exist
yet is reported as such (the first run creates it), not created by the check.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from shipyard import __version__
from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import CliState, get_state
from shipyard.config import SETTINGS
from shipyard.errors import ShipyardError

__all__ = ["Check", "doctor"]

_BACKENDS = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "http": "Shipyard server",
    "https": "Shipyard server",
}


@dataclass(frozen=True)
class Check:
    """One line of the report; ``ok`` is None for plain facts, True/False for checks."""

    name: str
    detail: str
    ok: bool | None = None


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower()


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///…`` URI (None for other URIs and ``:memory:``)."""
    if _scheme(uri) != "sqlite" or ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ShipyardError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _tracking_checks(state: CliState) -> list[Check]:
    uri = state.settings().tracking_uri
    checks = [Check("URI", uri), Check("backend", _BACKENDS.get(_scheme(uri), f"unknown ({_scheme(uri)})"))]
    db = _sqlite_file(uri)
    if db is not None:
        if not db.exists():
            checks.append(
                Check("location", f"{db.resolve()} (not created yet; the first run creates it)", True)
            )
            return checks
        checks.append(Check("location", f"{db.resolve()} ({render.fmt_bytes(db.stat().st_size)})"))
    try:
        client = state.client()
        checks.append(Check("schema version", client.schema_version() or "unknown"))
        count = len(client.list_experiments())
        checks.append(Check("reachable", f"yes ({count} experiment(s))", True))
    except Exception as exc:  # doctor reports every failure, expected or not, instead of crashing
        checks.append(Check("reachable", f"no: {_describe(exc)}", False))
    return checks


def _nearest_existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _artifact_checks(state: CliState) -> list[Check]:
    settings = state.settings()
    uri = settings.artifact_uri
    checks = [Check("URI", uri)]
    if settings.is_remote:
        checks.append(Check("served by", f"{settings.tracking_uri} (artifacts go through the server)"))
        return checks
    if "://" not in uri or uri.startswith("file://"):
        folder = Path(uri.removeprefix("file://"))
        existing = _nearest_existing(folder)
        writable = os.access(existing, os.W_OK)
        state_text = (
            "exists" if existing == folder.resolve() else f"not created yet; {existing} is the nearest folder"
        )
        checks.append(Check("location", f"{folder.resolve()} ({state_text})"))
        checks.append(Check("writable", "yes" if writable else f"no: {existing} is not writable", writable))
        return checks
    try:
        state.client().blobs.exists("0" * 64)
        checks.append(Check("reachable", "yes", True))
    except Exception as exc:  # as above: report, do not crash
        checks.append(Check("reachable", f"no: {_describe(exc)}", False))
    return checks


def _spool_checks(state: CliState) -> list[Check]:
    """Writes kept offline for a server: how many wait, and why each last replay stopped."""
    from shipyard.store.spool import spool_status  # only the REST client stack needs it

    status = spool_status(state.settings().spool_dir)
    checks = [Check("location", status.spool_dir)]
    if status.ok:
        checks.append(Check("waiting", "nothing (every spooled write was sent)", True))
        return checks
    for journal, why in status.journals:
        reason = why or "not replayed yet (run: shipyard sync)"
        checks.append(Check("waiting", f"{journal}: {reason}", None if why is None else False))
    if status.rejected:
        detail = (
            f"{status.rejected} spooled write(s) refused by the server, kept in {status.spool_dir}/rejected"
        )
        checks.append(Check("refused", f"{detail}; last: {status.last_rejection}", False))
    return checks


def _settings_rows(state: CliState) -> list[dict[str, Any]]:
    settings = state.settings()
    return [
        {
            "name": s.name,
            "value": "***" if s.secret and getattr(settings, s.name) else getattr(settings, s.name),
            "source": settings.sources.get(s.name, "default"),
            "env_var": s.env_var,
        }
        for s in SETTINGS
    ]


def _check_table(title: str, checks: list[Check]) -> Any:
    table = render.make_table("", "", "", title=title)
    table.show_header = False
    marks = {True: Text("✓", style="green"), False: Text("✗", style="red"), None: Text("")}
    for c in checks:
        table.add_row(marks[c.ok], *render.cells([c.name, c.detail]))
    return table


def doctor(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the installation: stores, backend, schema version, reachability, and every setting's source.

    Exits 1 when a check fails.

    Examples:

      shipyard doctor
      SHIPYARD_TRACKING_URI=http://tracking:5000 shipyard doctor --json
    """
    state = get_state(ctx)
    tracking, artifacts, settings = _tracking_checks(state), _artifact_checks(state), _settings_rows(state)
    spool = _spool_checks(state)
    ok = all(c.ok is not False for c in tracking + artifacts + spool)
    if as_json:
        render.print_json(
            {
                "ok": ok,
                "version": __version__,
                "python": f"{platform.python_version()} ({sys.executable})",
                "tracking": [asdict(c) for c in tracking],
                "artifacts": [asdict(c) for c in artifacts],
                "spool": [asdict(c) for c in spool],
                "settings": settings,
            }
        )
    else:
        _print_report(tracking, artifacts, spool, settings)
    if not ok:
        render.error("some checks failed (marked ✗ above)")
        raise typer.Exit(1)


def _print_report(
    tracking: list[Check], artifacts: list[Check], spool: list[Check], settings: list[dict[str, Any]]
) -> None:
    table = render.make_table("setting", "value", "source", "env var", title="Settings")
    for row in settings:
        style = "" if row["source"] == "default" else "bold"
        table.add_row(*render.cells([row["name"], row["value"], row["source"], row["env_var"]]), style=style)
    render.show(
        Text(f"shipyard {__version__} on Python {platform.python_version()} ({sys.executable})"),
        _check_table("Tracking store", tracking),
        _check_table("Artifact store", artifacts),
        _check_table("Offline spool", spool),
        table,
    )
