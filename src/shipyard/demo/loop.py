"""Demo stage: monitor the live server through August-December, with the closed loop of retraining.

Each month of 2013's second half is replayed through the running model server (July was the serving
stage's). Labels arrive late, as they do in production: right after a month's traffic only a tenth of
its flights have a known arrival (posted to the server's ``/feedback``); the rest land before the next
month's pass. After each month one incremental monitoring pass (``sy.monitor_pass``) reads only the new
part of the prediction log and stores drift, traffic, realised performance (measuring earlier months
again as their labels land) and estimated performance; the alert rules then fire, resolve or stay.

When realised AUC stays under the floor for two fully labelled months, the ``retrain`` action runs
``flights_retraining`` on the newest labelled traffic. ``sy.complete_retrain`` registers the model as
``challenger``, evaluates it beside the champion on the newest labelled predictions and runs the
promotion policy: judged on the newest month no model trained on, with a reviewer's approval required.
The demo plays the reviewer, the loop resumes, ``champion`` moves, and the server (following the
alias) swaps models while the next month's requests keep arriving, none failing. A self-contained HTML
report for stakeholders is written at the end.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from shipyard.demo.context import DemoContext
from shipyard.demo.registry import MODEL_NAME, REVIEWER, gates_table
from shipyard.demo.retrain import HOLDOUT
from shipyard.demo.serving import DEPLOYMENT, MONTH_ROWS, LiveServer, Sent, month_traffic
from shipyard.errors import InvalidState
from shipyard.monitoring.alerts import get_alert
from shipyard.monitoring.html_report import list_monitor_series, monitor_report
from shipyard.monitoring.loop import complete_retrain
from shipyard.monitoring.passes import MonitorPass, monitor_pass
from shipyard.registry import core, governance
from shipyard.registry.core import list_model_records
from shipyard.registry.governance import PromotionResult
from shipyard.tracking import Client

__all__ = ["monitor_and_retrain"]

EARLY_SHARE = 0.1  # labels known right after a month's traffic
MONTHS = {7: "Jul", 8: "Aug", 9: "Sep", 10: "Oct", 11: "Nov", 12: "Dec"}
_SWAP_WAIT_S = 60.0


def _loop_policy() -> str:
    """The policy for retrained versions: judged on the newest labelled month, which no model trained on."""
    return f"""
evaluation:
  dataset: {HOLDOUT}@latest
  target: late
  sensitive: [origin]
gates:
  - {{metric: roc_auc, min: 0.60}}
  - {{metric: roc_auc, relative_to: champion, min_delta: -0.01}}
  - {{metric: log_loss, relative_to: champion, max_delta: 0.0}}
  - {{contract: true}}
  - {{fairness: demographic_parity_difference, column: origin, max: 0.25}}
  - {{max_latency_ms: 100, rows: 1}}
approvals:
  required: 1
  role: approver
"""


def _rules(floor: float, ctx: DemoContext) -> str:
    best = ctx.require_best()
    train_ref = ctx.extras["datasets"]["flights-train"].ref
    val_ref = ctx.extras["datasets"]["flights-validation"].ref
    params = (
        f"{{deployment: {DEPLOYMENT}, train_ref: '{train_ref}', val_ref: '{val_ref}', spec: '{best.name}', "
        f"holdout_rows: {MONTH_ROWS[ctx.quick]}, quick: {str(ctx.quick).lower()}, seed: {ctx.seed}}}"
    )
    return f"""
rules:
  - name: inputs-drifted
    when: drift.share > 0.3
  - name: estimated-auc-low
    when: estimated.roc_auc < {floor}
  - name: auc-low
    when: performance.roc_auc < {floor} for 2 windows
    min_labelled: 0.9
    actions:
      - record
      - retrain:
          pipeline: 'shipyard.demo.retrain:flights_retraining'
          params: {params}
          window_rows: {MONTH_ROWS[ctx.quick]}
"""


def _reference_scores(ctx: DemoContext, champion: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The champion's scores on the validation data, with its labels: the estimate's reference."""
    data = ctx.require_data()
    model = core.load_model(champion, client=ctx.client)
    proba = np.asarray(model.predict_proba(data.val))
    return proba[:, -1], data.y_val.to_numpy()


def monitor_and_retrain(ctx: DemoContext) -> None:
    """Stage: replay August-December with delayed labels; monitor, alert, retrain, promote, swap, report."""
    live: LiveServer | None = ctx.extras.get("server")
    champion = ctx.extras.get("champion")
    if live is None or champion is None:
        ctx.console.print("No model is being served in this run; nothing to monitor.")
        return
    roles = Path(ctx.client.settings.home) / "roles.yaml"
    admin = ctx.client.with_settings(roles_file=str(roles))
    reviewer = ctx.client.with_settings(user=REVIEWER, roles_file=str(roles))
    governance.set_promotion_policy(
        MODEL_NAME, _loop_policy(), reason="retrained versions are judged on the newest month", client=admin
    )
    val_auc = float(ctx.require_best().metrics.get("val_auc", 0.75))
    floor = round(val_auc - 0.04, 2)
    rules = _rules(floor, ctx)
    reference = _reference_scores(ctx, champion.ref)
    ctx.console.print(
        f"Alert rules: drift share > 0.3 (record); estimated AUC < {floor} (record); realised AUC < {floor} "
        f"for 2 fully labelled months (record, then retrain). The floor is the champion's validation AUC "
        f"{val_auc:.3f} minus 0.04. Policy for retrained versions: judged on the newest labelled month "
        f"({HOLDOUT}@latest), AUC no more than 0.01 below the champion's, log loss no worse, one approval."
    )
    traffic: dict[int, tuple[pd.DataFrame, Sent]] = dict(ctx.extras.get("traffic", {}))
    story = _Story(ctx)
    stats = live.log_stats()
    written, labelled = stats.get("written", 0), stats.get("feedback_written", 0)
    early: dict[int, int] = {}
    for month in MONTHS:
        if month not in traffic:
            frame = month_traffic(ctx, month)
            sent = live.send(frame)
            traffic[month] = (frame, sent)
            story.sent(month, sent)
            written += sent.ok
        labelled += _labels(live, traffic, month, early)
        live.wait_flushed(written=written, feedback=labelled)
        result = monitor_pass(DEPLOYMENT, rules=rules, estimate_reference=reference, client=admin)
        story.passed(MONTHS[month], result, traffic[month])
        for opened in [o for o in result.outcomes if o.outcome == "opened" and o.alert is not None]:
            assert opened.alert is not None
            if "retrain" in opened.alert.actions:
                story.retrained(_close_loop(opened.alert.id, MONTH_ROWS[ctx.quick], admin, reviewer))
    labelled += _labels(live, traffic, 13, early)  # December's late labels land; one last pass
    live.wait_flushed(written=written, feedback=labelled)
    story.passed(
        "end", monitor_pass(DEPLOYMENT, rules=rules, estimate_reference=reference, client=admin), None
    )
    story.print()
    path = Path(ctx.client.settings.home) / "reports" / f"{DEPLOYMENT}.html"
    monitor_report(DEPLOYMENT, path, models=[MODEL_NAME], client=admin)
    ctx.extras["report"] = path
    story.conclude(path)


def _labels(
    live: LiveServer, traffic: dict[int, tuple[pd.DataFrame, Sent]], month: int, early: dict[int, int]
) -> int:
    """Post the rest of last month's labels and the first tenth of this month's; return how many."""
    posted = 0
    if month - 1 in traffic:
        frame, sent = traffic[month - 1]
        posted += live.post_labels(frame, sent.requests[early.get(month - 1, 0) :])
    if month in traffic:
        frame, sent = traffic[month]
        early[month] = int(len(sent.requests) * EARLY_SHARE)
        answered = sorted(sent.requests, key=lambda r: str(r[1][0]))  # the order clients got answers varies
        order = np.random.default_rng(month).permutation(len(answered))
        sent.requests = [answered[i] for i in order]  # which flights report first is random, but seeded
        posted += live.post_labels(frame, sent.requests[: early[month]])
    return posted


def _close_loop(alert_id: int, window_rows: int, admin: Client, reviewer: Client) -> dict[str, Any]:
    """The retrain alert's loop: blocked for an approval, approved by the reviewer, resumed."""
    loop = get_alert(alert_id, client=admin).actions.get("closed_loop", {})
    out: dict[str, Any] = {"alert": alert_id, "first": dict(loop)}
    if loop.get("status") == "blocked" and loop.get("version"):
        version = int(loop["version"])
        gates = [r for r in loop.get("reasons", []) if "approval" not in r]
        if gates:  # a failing gate: the retrained model is not good enough; no approval can change that
            out["final"] = loop
            return out
        governance.approve_model(
            MODEL_NAME, version, reason="holdout evaluation and gates reviewed", client=reviewer
        )
        out["approved_by"] = REVIEWER
        resumed = complete_retrain(alert_id, window_rows=window_rows, client=admin)
        out["final"] = resumed.to_dict()
    else:
        out["final"] = loop
    return out


class _Story:
    """What the stage prints: one table row per pass, then the loop's chain and the numbers."""

    def __init__(self, ctx: DemoContext) -> None:
        self.ctx = ctx
        self.rows: list[tuple[str, ...]] = []
        self.loops: list[dict[str, Any]] = []
        self.months: dict[int, Sent] = {}
        self.realised: dict[str, float] = {}

    def sent(self, month: int, sent: Sent) -> None:
        self.months[month] = sent
        served = ", ".join(f"v{v}: {n:,}" for v, n in sorted(sent.versions.items()))
        self.ctx.console.print(
            f"{MONTHS[month]}: {sent.rows:,} flights in {sent.ok:,} requests ({sent.seconds:.1f}s), "
            f"answered by {served}; {sent.failed} failed."
        )
        if sent.failed:
            raise InvalidState(f"{sent.failed} requests failed in {MONTHS[month]}")

    def passed(self, label: str, result: MonitorPass, sent: tuple[pd.DataFrame, Sent] | None) -> None:
        drift = result.summaries.get("drift", {})
        est = result.estimate
        perf = list_monitor_series(DEPLOYMENT, "performance", limit=24, client=self.ctx.client)
        full = [r for r in perf if (r.summary.get("labelled_share") or 0) >= 0.9]
        last_full = full[-1].summary.get("roc_auc") if full else None
        fired = [o.rule for o in result.outcomes if o.outcome == "opened"]
        still = [o.rule for o in result.outcomes if o.outcome == "firing"]
        self.rows.append(
            (
                label,
                f"{result.requests:,}",
                _num(drift.get("share_drifted"), ".0%"),
                _num(drift.get("domain_auc"), ".2f"),
                "-"
                if est is None
                else f"{est.metrics.get('roc_auc', float('nan')):.3f}" + ("" if est.trusted else " ?"),
                "-" if sent is None else f"{_true_auc(sent):.3f}",
                _num(last_full, ".3f"),
                ", ".join([*(f"[red]{r}[/]" for r in fired), *still]) or "-",
            )
        )

    def retrained(self, loop: dict[str, Any]) -> None:
        self.loops.append(loop)
        final = loop["final"]
        first = loop["first"]
        console = self.ctx.console
        console.print(
            f"Alert {loop['alert']} opened with a retrain action: pipeline run "
            f"{str(final.get('pipeline_run'))[:8]} "
            f"({final.get('pipeline_status')}) → models:/{MODEL_NAME}/{final.get('version')} "
            f"registered as challenger (champion: v{final.get('champion')})."
        )
        evals = final.get("evaluations", {})
        if evals:
            parts = [
                f"{role} v{e['version']}: AUC {e['metrics'].get('roc_auc', float('nan')):.3f}"
                for role, e in evals.items()
            ]
            console.print(
                f"Both evaluated on the newest {next(iter(evals.values()))['rows']:,} labelled predictions: "
                + "; ".join(parts)
            )
        if first.get("status") == "blocked" and loop.get("approved_by"):
            console.print(
                f"The policy's gates passed; promotion waited for an approval. As {loop['approved_by']} "
                "(role approver, not the author): approved; the loop resumed."
            )
        version = final.get("version")
        records = list_model_records(MODEL_NAME, int(version), client=self.ctx.client) if version else []
        decided = [r for r in records if r.kind == "promotion" and r.body.get("alias") == "champion"]
        if decided:
            console.print(
                f"The policy for {MODEL_NAME}@champion, on {HOLDOUT}@latest (data no model learned from):"
            )
            console.print(gates_table(PromotionResult.from_dict(decided[-1].body)))
        status = final.get("status")
        style = "bold green" if status == "promoted" else "bold yellow"
        reasons = "; ".join(final.get("reasons", [])[:3])
        console.print(Text(f"Closed loop: {status}" + (f" ({reasons})" if reasons else ""), style=style))

    def print(self) -> None:
        table = Table(
            "pass",
            "requests",
            "drifted",
            "domain AUC",
            "est. AUC",
            "true AUC",
            "realised AUC",
            "alerts opened / firing",
            box=box.SIMPLE_HEAD,
            title="One monitoring pass after each month",
        )
        for row in self.rows:
            table.add_row(*row)
        self.ctx.console.print(table)
        self.ctx.console.print(
            Text(
                "est. AUC: estimated from scores and the tenth of labels known at the pass (? = flagged "
                "untrusted); true AUC: computed here with every label, for comparison; realised AUC: the "
                "newest fully labelled month as the monitor measured it once its labels had landed.",
                style="dim",
            )
        )

    def conclude(self, path: Path) -> None:
        console = self.ctx.console
        promoted = [loop for loop in self.loops if loop["final"].get("status") == "promoted"]
        if promoted:
            versions: Counter[str] = Counter()
            for sent in self.months.values():
                versions.update(sent.versions)
            failed = sum(s.failed for s in self.months.values())
            served = ", ".join(f"v{v}: {n:,}" for v, n in sorted(versions.items()))
            console.print(
                f"The server follows {MODEL_NAME}@champion and swapped models when it moved, between "
                f"requests: August-December answered by {served}; {failed} failed."
            )
        elif self.loops:
            console.print("The retrained model did not pass the policy; the champion stays.")
        else:
            console.print("No retrain alert fired in these months.")
        chain = self.ctx.client.verify_audit()
        console.print(
            f"Audit chain verified: {chain.checked:,} entries"
            if chain.ok
            else f"Audit chain BROKEN: {chain.problems[:1]}"
        )
        console.print(f"Stakeholder report (one HTML file, opens offline): [bold]{path}[/]")
        console.print(Text(f"shipyard monitor alerts ls --deployment {DEPLOYMENT}", style="dim"))


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(float(value), fmt)


def _true_auc(month: tuple[pd.DataFrame, Sent]) -> float:
    """The month's AUC with every label (what the estimate tries to know early)."""
    from sklearn.metrics import roc_auc_score

    frame, sent = month
    labels = list(sent.scores)
    return float(roc_auc_score(frame.loc[labels, "late"], [sent.scores[i] for i in labels]))
