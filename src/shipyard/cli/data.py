"""``shipyard data …``: version datasets, inspect and download them, scan for personal data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import render
from shipyard.cli.options import JsonOption
from shipyard.cli.state import get_state
from shipyard.data.versions import diff_datasets, load_dataset, log_dataset, parse_dataset_ref
from shipyard.entities import DatasetVersion

__all__ = [
    "add",
    "app",
    "contract_app",
    "contract_infer",
    "diff",
    "get",
    "ls",
    "pii",
    "show",
    "validate_file",
]

app = typer.Typer(no_args_is_help=True, help="Version datasets, inspect them, scan them for personal data.")

RefArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME@REF", help="A dataset version: NAME@v3, NAME@latest or NAME@<digest prefix>."
    ),
]
FileArg = Annotated[
    Path, typer.Argument(metavar="PATH", help="A CSV or Parquet file, or a folder of them.", exists=False)
]


ContractOption = Annotated[
    Path | None,
    typer.Option(
        "--contract", "-c", metavar="YAML", help="A data contract the data must satisfy.", dir_okay=False
    ),
]
contract_app = typer.Typer(no_args_is_help=True, help="Write and check data contracts.")
app.add_typer(contract_app, name="contract")


def _read_frame(path: Path) -> Any:
    import polars as pl

    from shipyard.errors import InvalidInput

    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    if path.suffix.lower() == ".csv":
        return pl.read_csv(path, infer_schema_length=10_000)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pl.read_parquet(path)
    raise InvalidInput(f"{path}: expected a .csv or .parquet file")


@contract_app.command("infer")
def contract_infer(
    path: FileArg,
    name: Annotated[str, typer.Option("--name", "-n", help="Contract name.")] = "",
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="YAML", help="Write here.")] = None,
) -> None:
    """Draft a contract from a CSV or Parquet file: types, nullability, ranges, allowed values.

    The draft is a starting point: add descriptions, units and owners, and tighten the rules.

    Examples:

      shipyard data contract infer flights.csv --name flights -o flights.yaml
    """
    from shipyard.data.contracts import infer_contract

    text = infer_contract(_read_frame(path), name=name or path.stem).to_yaml()
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    render.say(f"Wrote a draft contract to {output}")


@contract_app.command("add")
def contract_add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="YAML", help="A contract file.")],
    as_json: JsonOption = False,
) -> None:
    """Register a contract as the next version of its name (unchanged content keeps its version).

    Examples:

      shipyard data contract add contracts/flights.yaml
    """
    from shipyard.data.registry import register_contract

    version = register_contract(path, client=get_state(ctx).client())
    if as_json:
        render.print_json({k: v for k, v in version.__dict__.items() if k != "yaml"})
        return
    render.say(f"{version.ref}  digest {version.digest[:12]}")


@contract_app.command("ls")
def contract_ls(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="Only this contract.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered contracts and their versions.

    Examples:

      shipyard data contract ls
    """
    from shipyard.data.registry import list_contracts

    found = list_contracts(name, client=get_state(ctx).client())
    if as_json:
        render.print_json([{k: v for k, v in c.__dict__.items() if k != "yaml"} for c in found])
        return
    table = render.make_table("contract", "digest", "created")
    for c in found:
        table.add_row(
            *render.cells([c.ref, c.digest[:12], f"{render.fmt_time(c.created_at)} by {c.created_by}"])
        )
    render.show(table)


@contract_app.command("show")
def contract_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@REF", help="NAME, NAME@v2 or NAME@latest.")],
) -> None:
    """Print a registered contract as YAML.

    Examples:

      shipyard data contract show flights@v2 > flights.yaml
    """
    from shipyard.data.registry import get_contract

    typer.echo(get_contract(ref, client=get_state(ctx).client()).yaml, nl=False)


@app.command("validate")
def validate_file(
    ctx: typer.Context,
    path: FileArg,
    contract: Annotated[
        str,
        typer.Option(
            "--contract", "-c", metavar="YAML|NAME@REF", help="A contract file or a registered one."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Check a CSV or Parquet file against a contract; exit 1 when any rule is broken.

    Every violation is listed (column, rule, failing rows, examples), not just the first.

    Examples:

      shipyard data validate july.csv --contract flights.yaml
      shipyard data validate july.parquet -c flights.yaml --json
    """
    from shipyard.data.registry import resolve_contract
    from shipyard.data.validation import validate

    report = validate(_read_frame(path), resolve_contract(contract, get_state(ctx).client()))
    if as_json:
        render.print_json(report.to_dict())
    elif report.violations:
        table = render.make_table("severity", "column", "rule", "failing rows", "examples", title=str(path))
        for v in report.violations:
            examples = ", ".join(repr(x) for x in v.examples[:3])
            count = "" if v.count is None else f"{v.count:,}"
            table.add_row(*render.cells([v.severity, v.column or "(table)", v.rule, count, examples]))
        render.show(table)
    else:
        render.say(f"{path}: all {report.n_rows:,} rows satisfy contract '{report.contract}'.")
    if not report.ok:
        raise typer.Exit(1)


def _version_row(v: DatasetVersion) -> list[str]:
    return [
        v.ref,
        f"{v.rows:,}",
        str(v.num_columns),
        render.fmt_bytes(v.size),
        v.digest[:12],
        render.fmt_time(v.created_at),
    ]


@app.command("add")
def add(
    ctx: typer.Context,
    path: FileArg,
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name, e.g. flights.")],
    contract: ContractOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a file or folder as a new version of dataset NAME (identical data: the same version).

    Files are converted to Parquet and hashed batch by batch, so they need not fit in memory.

    Examples:

      shipyard data add flights.csv --name flights
      shipyard data add ./exports/ --name transactions --json
      shipyard data add flights.csv --name flights --contract flights.yaml
    """
    version = log_dataset(path, name=name, contract=contract, client=get_state(ctx).client())
    if as_json:
        render.print_json(version.to_dict())
        return
    render.say(
        f"{version.ref}  {version.rows:,} rows × {version.num_columns} columns  digest {version.digest[:12]}"
    )


@app.command("ls")
def ls(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="Only this dataset.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List dataset versions (all datasets, or one).

    Examples:

      shipyard data ls
      shipyard data ls flights --json
    """
    versions = get_state(ctx).client().list_dataset_versions(name)
    if as_json:
        render.print_json([v.to_dict() for v in versions])
        return
    if not versions:
        render.say("No dataset versions yet (add one: shipyard data add FILE --name NAME).")
        return
    table = render.make_table("version", "rows", "columns", "size", "digest", "created")
    for v in versions:
        table.add_row(*render.cells(_version_row(v)))
    render.show(table)


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Show one version: size, source, who made it, and its schema.

    Examples:

      shipyard data show flights@v2
      shipyard data show flights@latest --json
    """
    version = get_state(ctx).client().get_dataset_version(*parse_dataset_ref(ref))
    if as_json:
        render.print_json(version.to_dict())
        return
    about = render.make_table("field", "value", title=version.ref)
    for key, value in [
        ("rows", f"{version.rows:,}"),
        ("columns", version.num_columns),
        ("size", render.fmt_bytes(version.size)),
        ("digest", version.digest),
        ("source", version.source),
        ("created", f"{render.fmt_time(version.created_at)} by {version.created_by}"),
    ]:
        about.add_row(*render.cells([key, value]))
    render.show(about, _schema_and_profile(ctx, version))


def _schema_and_profile(ctx: typer.Context, version: DatasetVersion) -> Any:
    """The schema, with each column's profile summary when the version has a profile."""
    profile = None
    if version.profile_digest is not None:
        from shipyard.data.versions import load_profile

        profile = load_profile(version, client=get_state(ctx).client())
    table = render.make_table(
        "column",
        "type",
        "nulls",
        "distinct",
        "min",
        "mean",
        "max",
        "top / histogram",
        title="schema and profile",
    )
    for column, kind in version.schema:
        p = profile.columns.get(column) if profile is not None else None
        if p is None:
            table.add_row(*render.cells([column, kind, "", "", "", "", "", ""]))
            continue
        if p.top is not None:
            shape = ", ".join(f"{k} {v:,}" for k, v in list(p.top.counts.items())[:3])
        else:
            shape = render.sparkline([float(c) for c in p.histogram.counts], width=20) if p.histogram else ""
        stats = [render.fmt_value(x) if x is not None else "" for x in (p.min, p.mean, p.max)]
        table.add_row(*render.cells([column, kind, f"{p.nulls:,}", f"{p.distinct:,}", *stats, shape]))
    return table


@app.command("get")
def get(
    ctx: typer.Context,
    ref: RefArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write the Parquet file.")
    ],
) -> None:
    """Download a version as a Parquet file (verified against its digest).

    Examples:

      shipyard data get flights@v2 -o flights-v2.parquet
    """
    import pyarrow.parquet as pq

    table = load_dataset(ref, output="arrow", client=get_state(ctx).client())
    output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, output)
    render.say(f"Wrote {table.num_rows:,} rows to {output}")


@app.command("diff")
def diff(ctx: typer.Context, a: RefArg, b: RefArg, as_json: JsonOption = False) -> None:
    """What changed from version A to version B: schema, rows, and each column's distribution.

    B's data is binned into A's stored profile (PSI, KS, mean shift), with a verdict in plain words.

    Examples:

      shipyard data diff flights@v1 flights@v2
    """
    result = diff_datasets(a, b, client=get_state(ctx).client())
    if as_json:
        render.print_json(result.to_dict())
        return
    render.say(str(result))


@app.command("pii")
def pii(
    path: FileArg,
    sample: Annotated[int, typer.Option(min=1, help="Rows to sample.")] = 10_000,
    as_json: JsonOption = False,
) -> None:
    """Scan a CSV or Parquet file for columns that look like personal data (examples are masked).

    Examples:

      shipyard data pii customers.csv
    """
    from shipyard.data.pii import scan_pii

    report = scan_pii(_read_frame(path), sample=sample)
    if as_json:
        render.print_json(report.to_dict())
        return
    if not report.findings:
        scanned = f"{report.columns_scanned} columns, {report.rows_scanned:,} rows sampled"
        render.say(f"No personal data found ({scanned}).")
        return
    table = render.make_table("column", "kind", "confidence", "examples (masked)")
    for f in report.findings:
        table.add_row(*render.cells([f.column, f.kind, f"{f.confidence:.2f}", ", ".join(f.examples)]))
    render.show(table)
