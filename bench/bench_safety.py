"""Safe loading: Shipyard's rule vs picklescan and modelscan on the same attacker corpus.

The corpus is ``tests/unit/registry/safety_corpus.py`` (28 payloads; the unit tests prove each one runs
code when loaded without protection, and that Shipyard refuses each unrun), plus benign real models
to show false positives. Every artifact is written to a file with the extension its format uses
(``.pkl``, ``.npy``, ``.joblib``, ``.skops``) and given to each scanner:

- **shipyard**: :func:`shipyard.registry.safety.scan_pickle` for pickles, ``.npy`` and joblib files;
  for ``.skops`` the types ``skops.io.get_untrusted_types`` reports, checked with
  :func:`~shipyard.registry.safety.is_allowed` (what the sklearn flavor does);
- **picklescan**: ``picklescan.scanner.scan_file_path`` (issues or infected files = detected);
- **modelscan**: ``ModelScan().scan(path)`` (any issue = detected; a skipped file is a miss).

Results: ``detected``, ``missed``, ``error`` (the scanner could not read it and said so, without
flagging it) for payloads; ``clean`` or ``FLAGGED`` for benign models.

    .venv/bin/pip install 'shipyard[bench]'      # picklescan, modelscan
    .venv/bin/python bench/bench_safety.py        # prints the table (markdown)
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "registry"))

from safety_corpus import Payload, build_corpus  # noqa: E402


def shipyard_verdict(path: Path, kind: str) -> bool | None:
    from shipyard.registry.safety import is_allowed, scan_pickle

    if kind == "skops":
        import skops.io

        return any(not is_allowed(t) for t in skops.io.get_untrusted_types(file=path))
    return bool(scan_pickle(path))


def picklescan_verdict(path: Path, kind: str) -> bool | None:
    from picklescan.scanner import scan_file_path

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = scan_file_path(str(path))
    if result.issues_count or result.infected_files:
        return True
    return None if result.scan_err else False


def modelscan_verdict(path: Path, kind: str) -> bool | None:
    from modelscan.modelscan import ModelScan

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        report = ModelScan().scan(path)
    if report.get("issues"):
        return True
    return None if report.get("errors") else False


SCANNERS: dict[str, Callable[[Path, str], bool | None]] = {
    "shipyard": shipyard_verdict,
    "picklescan": picklescan_verdict,
    "modelscan": modelscan_verdict,
}


def benign(workdir: Path) -> list[Payload]:
    """Real models and data, pickled as a python_function model or joblib would write them."""
    import joblib
    import numpy as np
    import pandas as pd
    import xgboost
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "c": rng.choice(["x", "y"], 200)})
    y = (frame["a"] > 0).astype(int)
    columns = ColumnTransformer([("c", OneHotEncoder(), ["c"])], remainder="passthrough")
    pipeline = make_pipeline(columns, HistGradientBoostingClassifier(max_iter=5)).fit(frame, y)
    forest = RandomForestClassifier(5, random_state=0).fit(frame[["a"]], y)
    booster = xgboost.XGBClassifier(n_estimators=5).fit(frame[["a"]], y)
    buffer = io.BytesIO()
    joblib.dump(forest, buffer)
    return [
        Payload("benign: HistGradientBoosting pipeline", "benign-0.pkl", pickle.dumps(pipeline)),
        Payload("benign: RandomForest (joblib)", "benign-1.joblib", buffer.getvalue(), "joblib"),
        Payload("benign: XGBClassifier", "benign-2.pkl", pickle.dumps(booster)),
        Payload("benign: DataFrame", "benign-3.pkl", pickle.dumps(frame)),
    ]


def _cell(verdict: bool | None, is_benign: bool) -> str:
    if is_benign:
        return "FLAGGED" if verdict else ("clean" if verdict is False else "error")
    return {True: "detected", False: "**missed**", None: "error"}[verdict]


def main() -> None:
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        payloads = build_corpus(root / "pwned", root / "work")
        rows = [(p, False) for p in payloads] + [(p, True) for p in benign(root / "benign")]
        print("| payload | " + " | ".join(SCANNERS) + " |")
        print("|---|" + "---|" * len(SCANNERS))
        totals = dict.fromkeys(SCANNERS, 0)
        for payload, is_benign in rows:
            path = root / payload.filename
            path.write_bytes(payload.data)
            cells = []
            for name, scanner in SCANNERS.items():
                try:
                    verdict = scanner(path, payload.kind)
                except Exception:  # a scanner that crashes on a file has not detected anything
                    verdict = None
                totals[name] += int(bool(verdict) and not is_benign)
                cells.append(_cell(verdict, is_benign))
            print(f"| {payload.name} | " + " | ".join(cells) + " |")
        print(
            f"| **payloads detected (of {len(payloads)})** | "
            + " | ".join(str(totals[n]) for n in SCANNERS)
            + " |"
        )
        assert not (root / "pwned").exists(), "a scanner ran a payload"


if __name__ == "__main__":
    main()
