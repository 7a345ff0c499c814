"""What every step of one import shares: the clients, the report, the progress callback, and the
comparison of both sides of one record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.importers.mlflow_source import MlflowSource
from shipyard.importers.report import EntityReport, ImportReport
from shipyard.tracking import Client

__all__ = ["ImportContext", "ProgressFn", "check"]

ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass
class ImportContext:
    """What every step of one import shares."""

    client: Client
    source: MlflowSource
    report: ImportReport
    dry_run: bool
    progress: ProgressFn
    workers: int = 4

    @property
    def actor(self) -> str:
        return self.client.settings.user

    @property
    def reason(self) -> str:
        return f"imported from MLflow {self.source.uri}"

    def origin(self, **ids: Any) -> dict[str, Any]:
        return {"system": "mlflow", "source": self.source.uri, **ids}


def check(ctx: ImportContext, row: EntityReport, item: str, source: str, target: str | None) -> None:
    """Compare both sides of one item (in a dry run, an item not in Shipyard yet is no mismatch)."""
    if target is None and ctx.dry_run:
        row.add_source(source)
    elif not row.compare(item, source, target):
        kind = row.entity.removesuffix("s")
        ctx.report.problems.append(
            f"{kind} {item} is not in Shipyard after the import"
            if target is None
            else f"{kind} {item} differs between MLflow and Shipyard (Shipyard's copy is left as it is)"
        )
