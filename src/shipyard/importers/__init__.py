"""Moving another tool's records into Shipyard (layer 3, beside ``pipelines``).

``import_mlflow`` reads an MLflow store (a ``mlruns/`` folder, an MLflow database or a running
MLflow server) through MLflow's own client and writes its experiments, runs (full metric histories,
params, tags, artifacts, dataset inputs, MLflow 3 logged models), registered models, versions and
aliases into Shipyard, keeping MLflow's ids and times, then checks every record on both sides
(:class:`ImportReport`). It sits above the registry because it writes model versions the
registry's way (``manifest_digest``); the MLflow client is imported only when an import starts
(``pip install 'shipyard[mlflow]'``).
"""

from __future__ import annotations

from shipyard.importers.mlflow_import import import_mlflow
from shipyard.importers.report import EntityReport, ImportReport

__all__ = ["EntityReport", "ImportReport", "import_mlflow"]
