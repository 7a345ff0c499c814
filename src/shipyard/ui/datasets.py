"""The data pages: datasets, a dataset's versions and contract, a version's profile and personal-data
findings, and the diff between two versions.

Everything shown is computed by the data layer (``shipyard.data``): profiles are the ones stored with
each version (``load_profile``), the contract is parsed by ``Contract.from_yaml``, the diff is
``diff_datasets`` and personal data is found by ``scan_pii``. Reading a version's rows on a page is
bounded: a version of at most :data:`PAGE_ROWS` rows is scanned for personal data when its page is
opened, and two such versions are diffed exactly from their data; bigger versions are diffed from
their stored profiles (binned) and the page says how to scan or diff them exactly from the CLI.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.data import diff_datasets, load_dataset, load_profile
from shipyard.entities import ContractVersion, DatasetVersion
from shipyard.errors import InvalidInput, NotFound, ShipyardError, StoreUnavailable
from shipyard.tracking import Client
from shipyard.ui.core import UI, number, page_router
from shipyard.ui.plots import BarChart, bar_chart, edge_text, histogram_labels

__all__ = ["MAX_CATEGORIES", "PAGE_ROWS", "routes"]

PAGE_ROWS = 100_000
"""Most rows of a version a page reads: to scan it for personal data, or (both versions) to diff exactly."""
MAX_CATEGORIES = 12
"""Most categories drawn as bars per column (the rest make one "other" bar)."""

_VERSION = re.compile(r"v?([0-9]{1,9})")
T = TypeVar("T")


@dataclass(frozen=True)
class ColumnView:
    """A profiled column as its row of the profile table shows it."""

    name: str
    dtype: str
    kind: str
    null_share: str
    nulls: int
    distinct: int | None
    min: str
    max: str
    mean: str
    chart: BarChart | None
    axis: tuple[str, str]
    hidden: bool = False  # categories not drawn: personal data


def _stat(value: float | str | None) -> str:
    return "" if value is None else value if isinstance(value, str) else number(value)


def _column_view(column: Any, personal: bool = False) -> ColumnView:
    """One :class:`~shipyard.data.profiles.ColumnProfile` as text and a chart.

    A ``personal`` column (marked PII by the contract, or found by the scan) gets no category bars:
    their labels would be the raw values the profile keeps.
    """
    datetime = column.kind == "datetime"
    chart, axis = None, ("", "")
    if column.histogram is not None:
        hist = column.histogram
        chart = bar_chart(hist.counts, histogram_labels(hist.edges, datetime))
        axis = (edge_text(hist.low, datetime), edge_text(hist.high, datetime))
    elif column.top is not None and not personal:
        shown = list(column.top.counts.items())[:MAX_CATEGORIES]
        rest = column.count - sum(c for _, c in shown)
        labels, counts = [k for k, _ in shown], [c for _, c in shown]
        if rest > 0:
            labels, counts = [*labels, "(other)"], [*counts, rest]
        chart = bar_chart(counts, labels, horizontal=True)
    mean = "" if column.mean is None else edge_text(column.mean, True) if datetime else number(column.mean)
    return ColumnView(
        name=column.name,
        dtype=column.dtype,
        kind=column.kind,
        null_share=f"{column.null_rate * 100:.1f}%",
        nulls=column.nulls,
        distinct=column.distinct,
        min=_stat(column.min),
        max=_stat(column.max),
        mean=mean,
        chart=chart,
        axis=axis,
        hidden=personal and column.top is not None,
    )


def _version_number(text: str) -> int | None:
    """``3`` or ``v3`` → 3; anything else (0, negative, not a number) → None."""
    found = _VERSION.fullmatch(text.strip())
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


def _contract_of(
    versions: Sequence[DatasetVersion], contracts: Sequence[ContractVersion]
) -> ContractVersion | None:
    """The contract the newest version logged with one was checked against."""
    by_digest = {c.digest: c for c in contracts}
    for version in sorted(versions, key=lambda v: -v.version):
        if version.contract_digest is not None and version.contract_digest in by_digest:
            return by_digest[version.contract_digest]
    return None


def _pii_columns(contract: ContractVersion | None) -> set[str]:
    """The columns ``contract`` marks as personal data (none when it does not parse)."""
    if contract is None:
        return set()
    from shipyard.data.contracts import Contract  # polars: only when there is a contract

    try:
        return {c.name for c in Contract.from_yaml(contract.yaml).columns if c.pii}
    except InvalidInput:
        return set()


class _Refused(Exception):
    """Why a diff cannot be drawn: the error page's status, title and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _not_a_version(text: str) -> str:
    return f"Version {text!r} is not a version number: use a whole number from 1, such as 1 or v1."


def _two_versions(
    name: str, versions: Sequence[DatasetVersion], a: str, b: str
) -> tuple[DatasetVersion, DatasetVersion]:
    """The versions ``a`` and ``b`` of dataset ``name`` to diff, or :class:`_Refused` saying why not."""
    if not versions:
        raise _Refused(404, "Not found", f"There is no dataset named '{name}' (see /datasets).")
    if not a.strip() or not b.strip():
        message = "Choose two versions to compare (a=1&b=2), from the form on the dataset's page."
        raise _Refused(400, "Choose two versions", message)
    va, vb = _version_number(a), _version_number(b)
    if va is None or vb is None:
        raise _Refused(400, "Not a version", _not_a_version(a if va is None else b))
    if va == vb:
        raise _Refused(400, "Same version", f"Both sides are v{va}: choose two different versions.")
    known = {v.version: v for v in versions}
    for wanted in (va, vb):
        if wanted not in known:
            message = f"Dataset version '{name}@v{wanted}' not found (dataset '{name}' has no such version)."
            raise _Refused(404, "Not found", message)
    unprofiled = [known[v].ref for v in (va, vb) if known[v].profile_digest is None]
    if unprofiled:
        message = (
            f"{' and '.join(unprofiled)} {'was' if len(unprofiled) == 1 else 'were'} logged without a "
            "profile, which a diff compares against (log it again with profile=True)."
        )
        raise _Refused(409, "Cannot diff", message)
    return known[va], known[vb]


def _cli(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def routes(ui: UI) -> APIRouter:
    """``/datasets``, ``/datasets/{name}``, ``/datasets/{name}/versions/{version}`` and the diff."""
    router = page_router()

    def read(call: Callable[[Client], T]) -> tuple[T | None, ShipyardError | None]:
        """``call(reader)`` through the data layer, or why it could not run (shown on the page)."""
        if ui.reader is None:
            return None, StoreUnavailable("This UI was built without a reader: it cannot read stored data.")
        try:
            return call(ui.reader), None
        except ShipyardError as exc:
            return None, exc

    @router.get("/datasets")
    def datasets(request: Request) -> HTMLResponse:
        latest: dict[str, DatasetVersion] = {}
        counts: dict[str, int] = {}
        for version in ui.store.list_dataset_versions():  # by name, then version: the last one wins
            latest[version.name] = version
            counts[version.name] = counts.get(version.name, 0) + 1
        by_digest = {c.digest: c for c in ui.store.list_contracts()}
        rows = [
            (v, counts[name], by_digest.get(v.contract_digest or "")) for name, v in sorted(latest.items())
        ]
        return ui.page(request, "datasets.html", rows=rows)

    @router.get("/datasets/{name}")
    def dataset_page(request: Request, name: str) -> HTMLResponse:
        versions = sorted(ui.store.list_dataset_versions(name), key=lambda v: -v.version)
        if not versions:
            return ui.error(request, 404, "Not found", f"There is no dataset named '{name}' (see /datasets).")
        contracts = ui.store.list_contracts()
        contract = _contract_of(versions, contracts)
        parsed, problem, newer = None, "", None
        if contract is not None:
            from shipyard.data.contracts import Contract  # polars: only for a page with a contract

            try:
                parsed = Contract.from_yaml(contract.yaml)
            except InvalidInput as exc:
                problem = exc.message
            same = [c for c in contracts if c.name == contract.name]
            newer = max(same, key=lambda c: c.version) if same else None
            newer = newer if newer is not None and newer.version > contract.version else None
        by_digest = {c.digest: c for c in contracts}
        return ui.page(
            request,
            "dataset.html",
            name=name,
            versions=[(v, by_digest.get(v.contract_digest or "")) for v in versions],
            contract=contract,
            parsed=parsed,
            problem=problem,
            newer=newer,
        )

    @router.get("/datasets/{name}/versions/{version}")
    def version_page(request: Request, name: str, version: str) -> HTMLResponse:
        wanted = _version_number(version)
        if wanted is None:
            return ui.error(request, 400, "Not a version", _not_a_version(version))
        try:
            found = ui.store.get_dataset_version(name, f"v{wanted}")
        except NotFound as exc:
            return ui.error(request, 404, "Not found", exc.message)
        from shipyard.data.pii import scan_pii  # polars: only on this page

        pii, pii_error = None, ""
        if found.rows <= PAGE_ROWS:
            pii, failed = read(lambda reader: scan_pii(load_dataset(found, output="polars", client=reader)))
            pii_error = failed.message if failed is not None else ""
        by_digest = {c.digest: c for c in ui.store.list_contracts()} if found.contract_digest else {}
        contract = by_digest.get(found.contract_digest or "")
        personal = _pii_columns(contract) | set(pii.columns if pii is not None else [])
        profile, profile_error = None, ""
        if found.profile_digest is None:
            profile_error = f"{found.ref} was logged without a profile (log it again with profile=True)."
        else:
            profile, failed = read(lambda reader: load_profile(found, client=reader))
            profile_error = failed.message if failed is not None else ""
        columns = [_column_view(c, c.name in personal) for c in profile.columns.values()] if profile else []
        file = f"{name}-v{found.version}.parquet"
        commands = [
            _cli("shipyard", "data", "get", found.ref, "-o", file),
            _cli("shipyard", "data", "pii", file),
        ]
        return ui.page(
            request,
            "dataset_version.html",
            dv=found,
            contract=contract,
            profile=profile,
            profile_error=profile_error,
            columns=columns,
            pii=pii,
            pii_error=pii_error,
            pii_commands=commands,
            page_rows=PAGE_ROWS,
        )

    @router.get("/datasets/{name}/diff")
    def diff_page(request: Request, name: str, a: str = "", b: str = "") -> HTMLResponse:
        versions = sorted(ui.store.list_dataset_versions(name), key=lambda v: -v.version)
        try:
            first, second = _two_versions(name, versions, a, b)
        except _Refused as refused:
            return ui.error(request, refused.status, refused.title, refused.message)
        from shipyard.data.diff import DatasetDiff, diff_profiles  # polars: only on this page

        def compute(reader: Client) -> DatasetDiff:
            if first.rows <= PAGE_ROWS and second.rows <= PAGE_ROWS:  # exact, from both versions' data
                return diff_datasets(first, second, client=reader)
            return diff_profiles(load_profile(first, client=reader), load_profile(second, client=reader))

        by_digest = {c.digest: c for c in ui.store.list_contracts()}
        personal = set().union(
            *(_pii_columns(by_digest.get(v.contract_digest or "")) for v in (first, second))
        )
        diff, failed = read(compute)
        if diff is None:
            assert failed is not None
            return ui.error(request, failed.http_status, "Cannot diff", failed.message)
        return ui.page(
            request,
            "dataset_diff.html",
            name=name,
            a=first,
            b=second,
            diff=diff,
            versions=versions,
            command=_cli("shipyard", "data", "diff", first.ref, second.ref),
            personal=personal,
            page_rows=PAGE_ROWS,
        )

    return router
