"""What a window is compared with: a stored profile, a dataset version's rows, an earlier window or a frame.

By default the reference is the stored profile of the dataset version the served model was trained on,
found through lineage: the model version's own ``datasets`` (role ``train``), else the dataset uses of its
source run with role ``train``. A profile holds exact counts over fixed bins, enough for PSI, binned KS,
binned Wasserstein and the chi-square test; exact KS and Wasserstein, true new-category detection and a
multivariate domain classifier need rows: pass a dataset version (``"flights@v3"``), an earlier window
(:class:`EarlierWindow`) or a frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from shipyard.data.profiles import Profile, profile, to_polars
from shipyard.data.versions import load_dataset, load_profile
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry.core import resolve

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion
    from shipyard.tracking import Client

__all__ = ["EarlierWindow", "Reference", "sample_bins", "training_dataset"]

MAX_REFERENCE_ROWS = 1_000_000


@dataclass(frozen=True)
class EarlierWindow:
    """An earlier window of the same deployment (and variant) as the reference: by time or the ``last``
    rows before ``until``.

    Example:
        >>> EarlierWindow(since="2025-11-01", until="2025-11-08").until
        '2025-11-08'
    """

    since: Any = None
    until: Any = None
    last: int | None = None


@dataclass
class Reference:
    """A resolved reference: always a profile (the bins), and the rows when there are any."""

    profile: Profile
    rows: pl.DataFrame | None
    source: str
    predictions: pl.DataFrame | None = None

    @classmethod
    def from_frame(cls, data: Any, source: str = "a frame", predictions: Any = None) -> Reference:
        """A reference from raw rows (pandas, polars or pyarrow): profiled here, rows kept for exact stats."""
        frame = to_polars(data)
        if frame.height > MAX_REFERENCE_ROWS:
            frame = frame.sample(MAX_REFERENCE_ROWS, seed=0)
        preds = None if predictions is None else to_polars(predictions)
        return cls(profile(frame), frame, source, preds)


def training_dataset(version: ModelVersion, client: Client) -> tuple[str, int]:
    """The (name, version) of the dataset a model version was trained on, through lineage.

    Raises:
        NotFound: neither the model version nor its source run records a dataset with role ``train``.
    """
    for name, number, role in version.datasets:
        if role == "train":
            return name, number
    if version.run_id:
        for use in client.store.list_run_datasets(version.run_id):
            if use.role == "train":
                return use.dataset.name, use.dataset.version
    raise NotFound(
        f"{version.ref} has no training dataset in its lineage (no dataset with role 'train' on the version "
        f"or its run {version.run_id!r}); pass reference='NAME@vN' to monitor_drift, or log the training "
        "data with sy.log_dataset(..., role='train') in the training run"
    )


def model_reference(model: str, client: Client) -> tuple[ModelVersion, Reference]:
    """The stored profile of the training dataset of the model version (``models:/NAME/N``) that served."""
    if not model.startswith("models:/"):
        raise NotFound(
            f"The window was served by {model!r}, not a registered model, so it has no lineage to a "
            "training dataset; pass reference='NAME@vN' (a dataset version) or an EarlierWindow"
        )
    version = resolve(model, client)
    dataset, number = training_dataset(version, client)
    ref = f"{dataset}@v{number}"
    source = f"profile of {ref} (training data of {version.ref})"
    return version, Reference(load_profile(ref, client=client), None, source)


def dataset_reference(ref: str, client: Client) -> Reference:
    """A dataset version's rows (exact statistics) and its stored profile's bins when it has one."""
    rows = load_dataset(ref, output="polars", client=client)
    try:
        stored = load_profile(ref, client=client)
    except NotFound:
        stored = None
    reference = Reference.from_frame(rows, source=f"rows of {ref}")
    if stored is not None:
        reference.profile = stored
    return reference


def check_columns(reference: Reference, features: pl.DataFrame | list[str]) -> list[str]:
    """The features compared: the reference profile's comparable columns also present in the window."""
    present = features if isinstance(features, list) else features.columns
    names = [n for n, c in reference.profile.columns.items() if c.kind != "other" and n in present]
    if not names:
        raise InvalidInput(
            f"No feature of the window ({present[:10]}) is in the reference ({reference.source}, "
            f"columns {list(reference.profile.columns)[:10]}); is it the right reference?"
        )
    return names


def sample_bins(reference: Reference, names: list[str], n: int, seed: int) -> pl.DataFrame:
    """``n`` rows drawn from the profile alone: per column a bin (or category) index drawn by the reference
    counts, null with the reference's null rate (-1), each column independently.

    Example:
        >>> p = profile(pl.DataFrame({"x": [1.0, 2.0, 3.0, None]}), bins=2)
        >>> sample_bins(Reference(p, None, "doc"), ["x"], 5, seed=0).height
        5
    """
    rng = np.random.default_rng(seed)
    columns = {}
    for name in names:
        col = reference.profile.columns[name]
        counts = np.asarray(
            col.histogram.counts
            if col.histogram is not None
            else [*(col.top.counts.values() if col.top else []), col.top.other if col.top else 0],
            dtype=np.float64,
        )
        index = rng.choice(len(counts), size=n, p=counts / counts.sum()) if counts.sum() else np.full(n, -1)
        index = np.where(rng.random(n) < col.null_rate, -1, index)
        columns[name] = index.astype(np.float64)
    return pl.DataFrame(columns)
