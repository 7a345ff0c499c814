"""Registered models, their versions and aliases of an MLflow store written into Shipyard's registry.

A model keeps its description, tags and times; a version keeps its number (gaps left by deleted
versions stay gaps), description, author, time, source run (when the run is in Shipyard) and tags;
its files are MLflow's folder plus what Shipyard adds (:mod:`~shipyard.importers.mlflow_versions`).
Aliases are set through the registry's audited alias moves; one already where MLflow has it is left
alone. Versions are checked on both sides once the aliases are set.
"""

from __future__ import annotations

from shipyard.entities import ModelVersion, RegisteredModel
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.importers.checksums import model_checksum, version_checksum
from shipyard.importers.context import ImportContext, check
from shipyard.importers.mlflow_source import mlflow_error, model_name
from shipyard.importers.mlflow_versions import RECORD_FILE, SHIPYARD_FILES, version_spec
from shipyard.importers.records import SourceFile, SourceModel, SourceVersion
from shipyard.store import ImportsRecords, LocalGovernance

__all__ = ["import_models"]


def import_models(ctx: ImportContext) -> None:
    """Every registered model of the source, with its versions and aliases, verified."""
    try:
        models = ctx.source.models()
    except Exception as exc:  # a store without a registry (an old file store) has nothing to move
        ctx.report.problems.append(f"the MLflow registry could not be read: {mlflow_error(exc)}")
        ctx.report.entity("registered models").failed += 1
        return
    mapping: dict[str, str] = ctx.report.mapping.setdefault("models", {})
    for i, model in enumerate(models, 1):
        name = model_name(model.name)
        mapping[model.name] = name
        if name != model.name:
            ctx.report.problems.append(f"registered model {model.name!r} is named {name!r} in Shipyard")
        try:
            _import_model(ctx, model, name)
        except ShipyardError as exc:
            ctx.report.entity("registered models").failed += 1
            ctx.report.problems.append(f"registered model {model.name!r}: {exc.message}")
        ctx.progress("models", i, len(models))


def _import_model(ctx: ImportContext, model: SourceModel, name: str) -> None:
    row = ctx.report.entity("registered models")
    target = _write_model(ctx, model, name)
    written = [_import_version(ctx, model, name, version) for version in model.versions]
    _import_aliases(ctx, model, name)
    for number, source_sum in (w for w in written if w is not None):  # checked with their aliases
        check(
            ctx,
            ctx.report.entity("model versions"),
            f"{name}/{number}",
            source_sum,
            _target_version_sum(ctx, name, number),
        )
    after = _get_model(ctx, name) if target is not None else None
    m = model
    source_sum = model_checksum(name, m.description, m.created_at, m.updated_at, m.tags, m.aliases)
    target_sum = (
        model_checksum(name, after.description, after.created_at, after.updated_at, after.tags, after.aliases)
        if after is not None
        else None
    )
    check(ctx, row, name, source_sum, target_sum)


def _write_model(ctx: ImportContext, model: SourceModel, name: str) -> RegisteredModel | None:
    row = ctx.report.entity("registered models")
    store = ctx.client.store
    if ctx.dry_run or not isinstance(store, ImportsRecords):
        found = _get_model(ctx, name)
        if found is None:
            row.imported += 1
        else:
            row.existing += 1
        return found
    origin = ctx.origin(name=model.name)
    found, created = store.import_registered_model(
        name, model.description, "", model.created_at, model.updated_at, ctx.actor, origin, tags=model.tags
    )
    if created:
        row.imported += 1
    else:
        row.existing += 1
    return found


def _get_model(ctx: ImportContext, name: str) -> RegisteredModel | None:
    try:
        return ctx.client.store.get_registered_model(name)
    except NotFound:
        return None


def _get_version(ctx: ImportContext, name: str, number: int) -> ModelVersion | None:
    try:
        return ctx.client.store.get_model_version(name, number)
    except NotFound:
        return None


# -- versions ------------------------------------------------------------------------------------
def _import_version(
    ctx: ImportContext, model: SourceModel, name: str, version: SourceVersion
) -> tuple[int, str] | None:
    """Write the version if Shipyard lacks it; its number and source checksum (None: it failed)."""
    row = ctx.report.entity("model versions")
    item = f"{name}/{version.version}"
    try:
        files = ctx.source.version_files(model.name, version.version)
    except Exception as exc:
        row.failed += 1
        row.add_source(count=1)
        ctx.report.problems.append(
            f"model version {item}: its files could not be listed: {mlflow_error(exc)}"
        )
        return None
    run_id = _run_in_shipyard(ctx, version, item)
    aliases = [a for a, v in model.aliases.items() if v == version.version]
    source_sum = _version_sum(name, version, run_id, aliases, [(f.path, f.size) for f in files])
    before = _get_version(ctx, name, version.version)
    new = before is None
    if new and not ctx.dry_run:
        try:
            before = _write_version(ctx, model, name, version, run_id, files)
        except Exception as exc:
            row.failed += 1
            row.add_source(count=1)
            message = exc.message if isinstance(exc, ShipyardError) else mlflow_error(exc)
            ctx.report.problems.append(f"model version {item} could not be imported: {message}")
            return None
    counted = ctx.report.entity("version files", checksummed=False)
    counted.add_source(count=len(files))
    counted.add_target(count=_model_files(before))
    if new:  # (in a dry run: would be)
        row.imported += 1
        counted.imported += len(files)
    else:
        row.existing += 1
        counted.existing += len(files)
    return version.version, source_sum


def _run_in_shipyard(ctx: ImportContext, version: SourceVersion, item: str) -> str | None:
    """The version's source run if Shipyard has it (MLflow's run id stays in the version's record)."""
    if version.run_id is None:
        return None
    try:
        ctx.client.store.get_run(version.run_id)
    except NotFound:
        if not ctx.dry_run:
            ctx.report.problems.append(
                f"model version {item}: its run {version.run_id} is not in Shipyard; the link is kept "
                f"only in {RECORD_FILE}"
            )
            return None
    return version.run_id


def _version_sum(
    name: str,
    version: SourceVersion,
    run_id: str | None,
    aliases: list[str],
    files: list[tuple[str, int]],
) -> str:
    return version_checksum(
        name,
        version.version,
        description=version.description,
        created_at=version.created_at,
        created_by=version.user,
        run_id=run_id,
        tags=version.tags,
        aliases=aliases,
        files=files,
    )


def _target_version_sum(ctx: ImportContext, name: str, number: int) -> str | None:
    found = _get_version(ctx, name, number)
    if found is None:
        return None
    blobs = ctx.client.blobs
    return version_checksum(
        name,
        found.version,
        description=found.description,
        created_at=found.created_at,
        created_by=found.created_by,
        run_id=found.run_id,
        tags=found.tags,
        aliases=found.aliases,
        files=[
            (f.path, f.size if blobs.exists(f.digest) else -1)  # recorded is not enough: the bytes too
            for f in found.files
            if not f.path.startswith(SHIPYARD_FILES)
        ],
    )


def _model_files(version: ModelVersion | None) -> int:
    """The files of MLflow's folder a version holds (not those Shipyard adds)."""
    return 0 if version is None else sum(1 for f in version.files if not f.path.startswith(SHIPYARD_FILES))


def _write_version(
    ctx: ImportContext,
    model: SourceModel,
    name: str,
    version: SourceVersion,
    run_id: str | None,
    listed: list[SourceFile],
) -> ModelVersion:
    store = ctx.client.store
    assert isinstance(store, ImportsRecords)
    spec = version_spec(ctx, model, name, version, run_id, listed)
    origin = ctx.origin(name=model.name, version=version.version)
    written, _ = store.import_model_version(spec, version.version, version.created_at, ctx.actor, origin)
    return written


# -- aliases -------------------------------------------------------------------------------------
def _import_aliases(ctx: ImportContext, model: SourceModel, name: str) -> None:
    row = ctx.report.entity("aliases")
    store = ctx.client.store
    current = _get_model(ctx, name)
    now = dict(current.aliases) if current is not None else {}
    for alias, number in sorted(model.aliases.items()):
        item = f"{name}@{alias}"
        if now.get(alias) == number:
            row.existing += 1
        elif ctx.dry_run or not isinstance(store, LocalGovernance):
            row.imported += 1  # would be
        else:
            try:
                store.set_model_alias(name, alias, number, ctx.actor, ctx.reason)
                now[alias] = number
                row.imported += 1
            except (InvalidInput, NotFound) as exc:
                row.failed += 1
                ctx.report.problems.append(f"alias {item} -> version {number} was not set: {exc.message}")
        target = f"{item}={now[alias]}" if alias in now else None
        check(ctx, row, item, f"{item}={number}", target)
