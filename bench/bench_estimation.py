"""Estimated performance before labels: Shipyard's estimator vs NannyML's CBPE on the demo's flights model.

The demo's features and target (``arr_delay > 15``), gradient boosting (depth 6, learning rate 0.1, up to 200
iterations with early stopping) trained on 60,000 January-June flights; the reference is the 30,000 held-out
January-June rows; the windows are July-December, one per month. Per window, ROC AUC:

- realised: on every label of the window;
- ours@10%: a random 10% of the window labelled (``method="recalibrated"``), with the 90% interval;
- ours@0%: none of the window labelled, the previous month's labels in (July: the reference's June rows)
  (``method="recent"``), and its ``trusted`` flag;
- ours@0% IW: no labels since the reference, importance-weighted reference calibration (``reference``);
- CBPE: NannyML's CBPE fitted on the reference, estimating each window (in ``bench/.venv-nannyml``);
- reference holds: the reference's realised AUC.

Usage::

    .venv/bin/python bench/bench_estimation.py            # writes the (monitoring-estimation) section
    .venv/bin/python bench/bench_estimation.py --no-cbpe  # without the NannyML venv; prints only
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS_PATH, load_average, machine_info, machine_line  # noqa: E402
from shipyard.demo.data import CATEGORICAL, NUMERIC, build_frame, split  # noqa: E402
from shipyard.demo.train import FeatureColumns, ModelSpec, build_estimator  # noqa: E402
from shipyard.monitoring.estimate import estimate_performance  # noqa: E402

KEY = "monitoring-estimation"
NANNY = Path(__file__).parent / ".venv-nannyml" / "bin" / "python"
FEATURES = [*NUMERIC, *CATEGORICAL]
CBPE_SCRIPT = """
import json, sys, warnings
import pandas as pd
import nannyml as nml
warnings.filterwarnings("ignore")
folder = sys.argv[1]
ref = pd.read_parquet(f"{folder}/reference.parquet")
est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="late", problem_type="classification_binary",
               metrics=["roc_auc", "accuracy", "f1"], chunk_number=1)
est.fit(ref)
out = {}
for month in range(7, 13):
    cur = pd.read_parquet(f"{folder}/month-{month}.parquet")
    res = est.estimate(cur).filter(period="analysis").to_df()
    out[month] = {m: float(res[(m, "value")].iloc[0]) for m in ("roc_auc", "accuracy", "f1")}
print(json.dumps(out))
"""


def train() -> dict[str, Any]:
    frame, _ = build_frame()
    tr, val, later = split(frame, False, 13)
    spec = ModelSpec("hgb-depth6-lr0.1", "hgb", {"max_depth": 6, "learning_rate": 0.1, "max_iter": 200})
    model = build_estimator(spec, FeatureColumns(list(NUMERIC), list(CATEGORICAL)), 13)
    with threadpool_limits(limits=1):
        model.fit(tr[FEATURES], tr["late"])
        ref_s = model.predict_proba(val[FEATURES])[:, 1]
        cur_s = model.predict_proba(later[FEATURES])[:, 1]
    return {"val": val, "later": later, "ref_s": ref_s, "cur_s": cur_s}


def ours(d: dict[str, Any], weighting: bool) -> dict[int, dict[str, Any]]:
    val, later = d["val"], d["later"]
    ref_s, ref_y = d["ref_s"], val["late"].to_numpy()
    rng = np.random.default_rng(0)
    out: dict[int, dict[str, Any]] = {}
    for month in range(7, 13):
        k = (later["month"] == month).to_numpy()
        s, y = d["cur_s"][k], later["late"].to_numpy()[k]
        prev = (val["month"] == 6).to_numpy() if month == 7 else (later["month"] == month - 1).to_numpy()
        recent_s = ref_s[prev] if month == 7 else d["cur_s"][prev]
        recent_y = ref_y[prev] if month == 7 else later["late"].to_numpy()[prev]
        some = np.where(rng.random(len(s)) < 0.10, y, np.nan)
        started = time.perf_counter()
        ten = estimate_performance(s, reference_scores=ref_s, reference_labels=ref_y, labels=some)
        t_ten = time.perf_counter() - started
        none = estimate_performance(
            s, reference_scores=ref_s, reference_labels=ref_y, recent_scores=recent_s, recent_labels=recent_y
        )
        row: dict[str, Any] = {"ten": ten, "none": none, "t_ten": t_ten}
        if weighting:
            row["iw"] = estimate_performance(
                s,
                reference_scores=ref_s,
                reference_labels=ref_y,
                reference_features=val[FEATURES],
                current_features=later.loc[k, FEATURES],
            )
        for est in row.values():
            if hasattr(est, "compare"):
                est.compare(s, y)
        out[month] = row
    return out


def cbpe(d: dict[str, Any]) -> dict[int, dict[str, float]] | None:
    if not NANNY.exists():
        print(f"(no {NANNY}: CBPE skipped; see bench/README.md)")
        return None
    with tempfile.TemporaryDirectory(prefix="bench-estimation-") as folder:
        val, later = d["val"], d["later"]
        pd.DataFrame(
            {"score": d["ref_s"], "pred": (d["ref_s"] >= 0.5).astype(int), "late": val["late"]}
        ).to_parquet(f"{folder}/reference.parquet")
        for month in range(7, 13):
            k = (later["month"] == month).to_numpy()
            s = d["cur_s"][k]
            pd.DataFrame({"score": s, "pred": (s >= 0.5).astype(int)}).to_parquet(
                f"{folder}/month-{month}.parquet"
            )
        done = subprocess.run(
            [str(NANNY), "-c", CBPE_SCRIPT, folder], capture_output=True, text=True, check=True, timeout=600
        )
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def table(rows: dict[int, dict[str, Any]], nanny: dict[int, dict[str, float]] | None, ref_auc: float) -> str:
    head = [
        "month",
        "late share",
        "realised",
        "ours@10% [90% interval]",
        "ours@0%",
        "trusted@0%",
        "ours@0% IW",
        "CBPE",
        "reference holds",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    errs: dict[str, list[float]] = {
        "ours@10%": [],
        "ours@0%": [],
        "ours@0% IW": [],
        "CBPE": [],
        "reference holds": [],
    }
    for month, r in rows.items():
        real = r["ten"].realised["roc_auc"]
        low, high = r["ten"].interval["roc_auc"]
        iw = r["iw"].metrics["roc_auc"] if "iw" in r else float("nan")
        cb = nanny[month]["roc_auc"] if nanny else float("nan")
        values = {
            "ours@10%": r["ten"].metrics["roc_auc"],
            "ours@0%": r["none"].metrics["roc_auc"],
            "ours@0% IW": iw,
            "CBPE": cb,
            "reference holds": ref_auc,
        }
        for name, v in values.items():
            errs[name].append(abs(v - real))
        lines.append(
            f"| {month} | {r['late_share']:.1%} | {real:.3f} | {values['ours@10%']:.3f} "
            f"[{low:.3f}, {high:.3f}] | {values['ours@0%']:.3f} | {'yes' if r['none'].trusted else 'no'} | "
            f"{iw:.3f} | {cb:.3f} | {ref_auc:.3f} |"
        )
    mae = {k: float(np.nanmean(v)) for k, v in errs.items()}
    lines.append(
        f"| **MAE** | | | **{mae['ours@10%']:.3f}** | **{mae['ours@0%']:.3f}** | | {mae['ours@0% IW']:.3f} | "
        f"{mae['CBPE']:.3f} | {mae['reference holds']:.3f} |"
    )
    return "\n".join(lines) + "\n"


def write_section(markdown: str, path: Path = RESULTS_PATH) -> None:
    """Replace the ``bench:monitoring-estimation`` section of RESULTS.md, or append it."""
    block = f"<!-- bench:{KEY} -->\n{markdown}<!-- /bench:{KEY} -->\n"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"<!-- bench:{KEY} -->\n.*?<!-- /bench:{KEY} -->\n?", re.DOTALL)
    path.write_text(
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-cbpe", action="store_true", help="skip NannyML; print only")
    parser.add_argument("--no-weighting", action="store_true", help="skip the importance-weighted column")
    args = parser.parse_args()
    started = time.perf_counter()
    d = train()
    print(f"trained in {time.perf_counter() - started:.0f} s")
    from sklearn.metrics import roc_auc_score

    ref_auc = float(roc_auc_score(d["val"]["late"], d["ref_s"]))
    rows = ours(d, weighting=not args.no_weighting)
    for month, r in rows.items():
        r["late_share"] = float(d["later"].loc[d["later"]["month"] == month, "late"].mean())
    nanny = None if args.no_cbpe else cbpe(d)
    body = table(rows, nanny, ref_auc)
    print(body)
    notes = [
        "## (monitoring: estimated performance) ROC AUC per month, flights model, July-December\n",
        machine_line(machine_info()) + f" Load average {load_average()}.\n",
        body,
        "ours@10%: a random 10% of each window labelled, Platt recalibration with a prior toward the "
        "reference calibration, expected AUC over the whole window, 90% bootstrap interval (200 resamples; "
        f"{np.mean([r['t_ten'] for r in rows.values()]):.1f} s per window). ours@0%: no label of the window, "
        "the previous month's labels carried forward (July: the reference's June rows); `trusted` is the "
        "estimate's own flag (no: the calibration moved by more than 0.05 between the reference and the "
        "previous month). ours@0% IW: no labels since the reference, reference calibration refitted with "
        "domain-classifier importance weights: it barely differs from CBPE, because the change is in "
        "P(late | inputs), which no input reweighting can see. CBPE: nannyml "
        "(bench/.venv-nannyml), fitted on the same reference. Reference holds: the reference's realised "
        "AUC.\n",
    ]
    if nanny is not None and not args.no_weighting:
        write_section("\n".join(notes))
        print(f"Wrote the bench:{KEY} section of {RESULTS_PATH}")


if __name__ == "__main__":
    main()
