"""Experiment tracking (layer 2): runs, params, metrics, artifacts, system metrics, autolog, query.

``Client`` is the canonical, thread-safe API; ``fluent`` holds the module-level
helpers re-exported by ``shipyard``.
"""

from shipyard.tracking.autolog import autolog, disable_autolog
from shipyard.tracking.client import Client
from shipyard.tracking.maintenance import GcReport
from shipyard.tracking.run import ActiveRun

__all__ = ["ActiveRun", "Client", "GcReport", "autolog", "disable_autolog"]
