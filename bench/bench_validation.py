"""Shipyard ``validate`` vs pandera (polars backend) vs bare polars expressions on the same rules.

1,000,000 rows × 25 columns generated with numpy (seeded): 10 float, 5 int and 10 string columns, two
rules per column (numbers: range + not-null; 5 strings: allowed values + not-null; 5 strings: full-match
regex + not-null). Measured on clean data and on dirty data (0.1% of each column's values broken and
0.1% set to null), median of 5 runs, the three contenders interleaved. The section between
``<!-- bench:validation -->`` markers in RESULTS.md is replaced (or appended); nothing else is touched.

    .venv/bin/python bench/bench_validation.py            # issue size, writes RESULTS.md
    .venv/bin/python bench/bench_validation.py --quick    # 100,000 rows, prints only
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_PATH, fmt_num, fmt_ratio, interleaved_medians, machine_info, machine_line

N_FLOAT, N_INT, N_ALLOWED, N_REGEX = 10, 5, 5, 5
STATUSES = ["new", "paid", "shipped", "returned", "cancelled"]
REGEX = r"[A-Z]{2}\d{3}"
BAD_FRACTION = 0.001


def make_data(n_rows: int, dirty: bool, seed: int = 0) -> pl.DataFrame:
    """The benchmark table; with ``dirty``, 0.1% bad values and 0.1% nulls in every column."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(N_FLOAT):
        cols[f"f{i}"] = rng.uniform(0.0, 100.0, n_rows)
    for i in range(N_INT):
        cols[f"i{i}"] = rng.integers(0, 1000, n_rows)
    for i in range(N_ALLOWED):
        cols[f"s{i}"] = np.asarray(STATUSES, dtype=object)[rng.integers(0, len(STATUSES), n_rows)]
    codes = np.asarray([f"{a}{b}{n:03d}" for a in "ABCDEFGH" for b in "XYZ" for n in range(40)], dtype=object)
    for i in range(N_REGEX):
        cols[f"r{i}"] = codes[rng.integers(0, len(codes), n_rows)]
    if not dirty:
        return pl.DataFrame(cols)
    n_bad = int(n_rows * BAD_FRACTION)
    bad_values = {"f": -1.0, "i": 5000, "s": "lost", "r": "bad-code"}
    nulls = {}
    for name, values in cols.items():
        values[rng.choice(n_rows, n_bad, replace=False)] = bad_values[name[0]]
        nulls[name] = np.zeros(n_rows, dtype=bool)
        nulls[name][rng.choice(n_rows, n_bad, replace=False)] = True
    df = pl.DataFrame(cols)
    return df.with_columns(
        pl.when(pl.Series(m)).then(None).otherwise(pl.col(n)).alias(n) for n, m in nulls.items()
    )


def make_contract() -> Any:
    from shipyard.data.contracts import Contract

    columns: list[dict[str, Any]] = []
    columns += [
        {"name": f"f{i}", "type": "float", "nullable": False, "min": 0, "max": 100} for i in range(10)
    ]
    columns += [{"name": f"i{i}", "type": "int", "nullable": False, "min": 0, "max": 999} for i in range(5)]
    columns += [
        {"name": f"s{i}", "type": "string", "nullable": False, "allowed_values": STATUSES} for i in range(5)
    ]
    columns += [{"name": f"r{i}", "type": "string", "nullable": False, "regex": REGEX} for i in range(5)]
    return Contract(name="bench", columns=columns)


def make_pandera_schema() -> Any:
    import pandera.polars as pa

    columns: dict[str, Any] = {}
    for i in range(N_FLOAT):
        columns[f"f{i}"] = pa.Column(pl.Float64, pa.Check.in_range(0, 100), nullable=False)
    for i in range(N_INT):
        columns[f"i{i}"] = pa.Column(pl.Int64, pa.Check.in_range(0, 999), nullable=False)
    for i in range(N_ALLOWED):
        columns[f"s{i}"] = pa.Column(pl.String, pa.Check.isin(STATUSES), nullable=False)
    for i in range(N_REGEX):
        columns[f"r{i}"] = pa.Column(pl.String, pa.Check.str_matches(f"^(?:{REGEX})$"), nullable=False)
    return pa.DataFrameSchema(columns)


def bare_polars_exprs() -> list[pl.Expr]:
    """The same checks as one select of failure-mask sums: what a hand-written check would do."""
    exprs = []
    for name, low, high in [(f"f{i}", 0, 100) for i in range(N_FLOAT)] + [
        (f"i{i}", 0, 999) for i in range(N_INT)
    ]:
        c = pl.col(name)
        exprs += [c.is_null().sum().alias(f"{name}_null"), ((c < low) | (c > high)).sum().alias(name)]
    for i in range(N_ALLOWED):
        c = pl.col(f"s{i}")
        exprs += [c.is_null().sum().alias(f"s{i}_null"), (~c.is_in(STATUSES)).sum().alias(f"s{i}")]
    for i in range(N_REGEX):
        c = pl.col(f"r{i}")
        exprs += [
            c.is_null().sum().alias(f"r{i}_null"),
            (~c.str.contains(f"^(?:{REGEX})$")).sum().alias(f"r{i}"),
        ]
    return exprs


def run_pandera(schema: Any, df: pl.DataFrame) -> None:
    import pandera.errors

    # dirty data: pandera raises with every failure case collected (lazy=True)
    with contextlib.suppress(pandera.errors.SchemaErrors):
        schema.validate(df, lazy=True)


def check_agreement(df: pl.DataFrame, contract: Any) -> int:
    """Shipyard and bare polars count the same failing rows (so the timings compare like with like)."""
    from shipyard.data.validation import validate

    bare = df.select(bare_polars_exprs()).row(0, named=True)
    report = validate(df, contract)
    ours = {(v.column if v.rule != "not_null" else f"{v.column}_null"): v.count for v in report.violations}
    expected = {k: v for k, v in bare.items() if v}
    assert ours == expected, (ours, expected)
    return sum(expected.values())


def measure(n_rows: int, repeat: int) -> list[dict[str, Any]]:
    from shipyard.data.validation import validate

    contract, schema, exprs = make_contract(), make_pandera_schema(), bare_polars_exprs()
    rows = []
    for dirty in (False, True):
        df = make_data(n_rows, dirty)
        failures = check_agreement(df, contract)
        times = interleaved_medians(
            {
                "shipyard": lambda df=df: validate(df, contract),
                "pandera": lambda df=df: run_pandera(schema, df),
                "polars": lambda df=df: df.select(exprs),
            },
            repeat=repeat,
        )
        rows.append({"data": "dirty" if dirty else "clean", "failures": failures, **times})
    return rows


def section_markdown(rows: list[dict[str, Any]], n_rows: int, machine: str, repeat: int) -> str:
    head = f"## (validation) Validating {n_rows:,} rows × 25 columns × 2 rules per column"
    lines = [head, "", f"_{machine}_", ""]
    lines.append(
        "| Data | Unit | Shipyard | pandera | bare polars | Shipyard advantage over pandera "
        "| Shipyard cost over bare polars | Target | Status |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        vs_pandera, vs_polars = r["pandera"] / r["shipyard"], r["shipyard"] / r["polars"]
        met = vs_pandera > 1 and vs_polars <= 2
        cells = [
            f"{r['data']} ({r['failures']:,} failing values)",
            "s",
            fmt_num(r["shipyard"]),
            fmt_num(r["pandera"]),
            fmt_num(r["polars"]),
            fmt_ratio(vs_pandera),
            fmt_ratio(vs_polars),
            "faster than pandera, ≤ 2× bare polars",
            "met" if met else "**MISSED**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- {n}" for n in _notes(repeat))]
    return "\n".join(lines) + "\n"


def _notes(repeat: int) -> list[str]:
    return [
        "Data generated with numpy (seed 0): 10 float, 5 int, 10 string columns. Rules: range + not-null "
        "(numbers), allowed values + not-null (5 strings), full-match regex + not-null (5 strings). Dirty: "
        "in every column 0.1% of values broken and 0.1% set to null.",
        f"Median of {repeat} runs each, the three interleaved. Shipyard: `validate(df, contract)` on a "
        "polars DataFrame, building the full report (counts, 5 example values and row positions per failing "
        "rule). pandera: `pandera.polars.DataFrameSchema.validate(df, lazy=True)` (dtype checks included; "
        "on dirty data it raises `SchemaErrors`, caught). Bare polars: one `df.select` of the 50 "
        "failure-mask sums, no report.",
        "Before timing, Shipyard's failing counts are checked equal to bare polars'.",
    ]


def write_section(markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``bench:validation`` section of RESULTS.md, or append it; other sections are kept."""
    block = f"<!-- bench:validation -->\n{markdown}<!-- /bench:validation -->\n"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(r"<!-- bench:validation -->\n.*?<!-- /bench:validation -->\n?", re.DOTALL)
    found = pattern.search(text)
    text = pattern.sub(lambda _: block, text) if found else text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 3 runs; prints only")
    parser.add_argument("--write", action="store_true", help="with --quick, still write RESULTS.md")
    args = parser.parse_args(argv)
    n_rows, repeat = (100_000, 3) if args.quick else (1_000_000, 5)
    print(f"Generating {n_rows:,} rows × 25 columns with numpy (seed 0), clean and dirty ...")
    rows = measure(n_rows, repeat)
    markdown = section_markdown(rows, n_rows, machine_line(machine_info()), repeat)
    print(markdown)
    if not args.quick or args.write:
        write_section(markdown)
        print(f"Wrote the bench:validation section of {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
