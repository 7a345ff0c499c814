"""The run page with 10 series of 100,000 points: where its server time goes (issue 14, deliverable 3).

    .venv/bin/python bench/bench_ui_run_page.py                # 10 × 100,000 points, 15 timed requests
    .venv/bin/python bench/bench_ui_run_page.py --points 20000 --repeats 5

Builds one run in a temporary SQLite store (``run.log_metric_series`` per key, as bench_ui.py does),
then, in this process:

- ``GET /runs/{id}`` through the server's own app (``create_app``) with FastAPI's ``TestClient``
  (in process), so the time measured is server time (routing, store reads, downsampling, rendering)
  with no network hop; the median of ``--repeats`` requests after two warm-up requests, in wall time
  and in this process's CPU time (steadier when other work shares the cores);
- the parts of that time, each the median over the same series: ``store.get_metric_history`` per
  series, ``charts.lttb`` per series (on arrays), ``charts.chart`` per series (conversion, LTTB and
  drawing from the history's lists), and the page's template rendered from ready charts.

The target: the page in ≤ 500 ms on the 2-core machine. Nothing is written; the numbers are printed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SERIES = 10
BASE_MS = 1_767_225_600_000


def series(k: int, points: int) -> tuple[Any, Any, Any]:
    """Series ``k``: a noisy decreasing training curve, (steps, timestamps, values)."""
    rng = np.random.default_rng(k)
    steps = np.arange(points, dtype=np.int64)
    stamps = BASE_MS + 20 * steps
    values = (1.0 + 0.1 * k) / (1.0 + steps / 500.0) + rng.normal(0.0, 0.02, points)
    return steps, stamps, values


def median_ms(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> float:
    """The median time of ``fn`` in ms: wall time by default; ``time.process_time`` for the CPU time of
    this process (all its threads), which other work on a busy machine inflates much less."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000, help="points per series (default 100,000)")
    parser.add_argument("--repeats", type=int, default=15, help="timed requests (default 15)")
    args = parser.parse_args(argv)

    from fastapi import Request

    with warnings.catch_warnings():  # Starlette's note that its TestClient will move off httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import shipyard as sy
    from shipyard.config import load_settings
    from shipyard.server import create_app
    from shipyard.server.app import app_state
    from shipyard.ui import charts
    from shipyard.ui.core import templates
    from shipyard.ui.run_page import CHART_POINTS

    with tempfile.TemporaryDirectory(prefix="bench-ui-run-page-") as tmp:
        root = Path(tmp)
        settings = load_settings(
            config_file=root / "no-config.toml",
            env={},
            tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
            artifact_uri=str(root / "artifacts"),
            home=str(root / "home"),
            system_metrics=False,
            user="bench",
        )
        client = sy.Client(settings=settings)
        start = time.perf_counter()
        with client.start_run("ui-run-page", name="ten-series", log_environment=False) as run:
            for k in range(SERIES):
                steps, stamps, values = series(k, args.points)
                run.log_metric_series(f"series_{k}", values, steps=steps, timestamps=stamps)
        client.close()
        print(f"built {SERIES} × {args.points:,} points in {time.perf_counter() - start:.1f} s")

        app = create_app(settings)
        store = app_state(app).store
        keys = [f"series_{k}" for k in range(SERIES)]
        histories = {k: store.get_metric_history(run.id, k) for k in keys}
        arrays = {
            k: (np.asarray(h.steps, np.float64), np.asarray(h.values, np.float64))
            for k, h in histories.items()
        }

        def per_series(fn: Callable[[str], Any]) -> float:
            return statistics.median(median_ms(lambda k=k: fn(k), 3) for k in keys)

        history_ms = per_series(lambda k: store.get_metric_history(run.id, k))
        lttb_ms = per_series(lambda k: charts.lttb(*arrays[k], CHART_POINTS))
        # the pages' downsampling (older commits drew with lttb itself and have no downsample)
        fast = getattr(charts, "downsample", None)
        fast_ms = per_series(lambda k: fast(*arrays[k], CHART_POINTS)) if fast else math.nan
        chart_ms = per_series(
            lambda k: charts.chart(k, histories[k].steps, histories[k].values, CHART_POINTS)
        )
        drawn = [charts.chart(k, h.steps, h.values, CHART_POINTS) for k, h in histories.items()]
        scope = {
            "type": "http",
            "method": "GET",
            "path": f"/runs/{run.id}",
            "headers": [],
            "query_string": b"",
        }
        context = {
            "request": Request(scope),
            "version": "bench",
            "signed_in": None,
            "form_csrf": "x",
            "run": store.get_run(run.id),
            "artifacts": [],
            "charts": drawn,
            "more": 0,
        }
        template = templates.get_template("run.html")
        render_ms = median_ms(lambda: template.render(context), 5)

        with TestClient(app) as http:

            def page() -> None:
                answer = http.get(f"/runs/{run.id}")
                if answer.status_code != 200 or answer.text.count('<figure class="chart"') != SERIES:
                    raise AssertionError(
                        f"the run page answered {answer.status_code} without its {SERIES} charts"
                    )

            page_ms = median_ms(page, args.repeats, warmup=2)
            page_cpu_ms = median_ms(page, args.repeats, clock=time.process_time)
            weight = len(http.get(f"/runs/{run.id}").content)

    rows = [
        (f"run page, {SERIES} series × {args.points:,} points (median of {args.repeats} requests)", page_ms),
        ("  the same, CPU time of this process", page_cpu_ms),
        (f"  store.get_metric_history × {SERIES}", history_ms * SERIES),
        (f"  charts.chart × {SERIES} (lists → arrays, downsampling, SVG points)", chart_ms * SERIES),
        ("    one series: charts.lttb on arrays (the published algorithm)", lttb_ms),
        ("    one series: charts.downsample on arrays (what charts.chart uses)", fast_ms),
        ("  run.html rendered from ready charts", render_ms),
    ]
    for label, ms in rows:
        print(f"{label:<78} {ms:8.1f} ms")
    print(f"{'page weight (HTML)':<78} {weight / 1024:8.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
