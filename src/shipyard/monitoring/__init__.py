"""Monitoring (layer 4, above serving): watch deployed models through their prediction log.

Drift compares a window of production inputs and predictions (by time or by count, per deployment and
variant) with a reference: the training dataset version's stored profile by default (found through
lineage), a dataset version's rows or an earlier window. Verdicts rest on effect sizes (PSI, KS D,
normalised Wasserstein, Jensen-Shannon distance) with documented thresholds; results are stored per
deployment as a time series of monitor reports. Performance joins labels (``POST /feedback``,
``log_feedback``, labelled files) to logged predictions and computes ``sy.evaluate``'s metrics per window;
``estimate_performance`` estimates a classifier's accuracy, F1 and ROC AUC before the labels arrive.
``query_predictions`` answers ad hoc questions over the whole log lazily. ``monitor_pass`` runs one
incremental pass (the predictions since the last pass's high-water mark) and evaluates alert rules
(``AlertRules``: ``drift.share > 0.3``, ``performance.roc_auc < 0.8 for 2 windows``, ...) whose actions
record, post a webhook or retrain; a retrain closes the loop (``complete_retrain``: register the
challenger, evaluate it beside the champion, run the promotion policy). ``monitor_report`` writes the
stakeholder HTML report and ``monitor_status`` gathers the status dashboard's data.
``schedule_monitoring`` has the server's scheduler run passes on a timetable (a built-in pipeline).
See ``docs/monitoring.md``.
"""

from shipyard.monitoring.alerts import RuleOutcome, evaluate_rules, get_alert, list_alerts
from shipyard.monitoring.drift import FeatureDrift, Thresholds, feature_drift
from shipyard.monitoring.estimate import EstimateLimits, PerformanceEstimate, estimate_performance
from shipyard.monitoring.html_report import monitor_report
from shipyard.monitoring.labels import LabelJoin, join_labels, log_feedback
from shipyard.monitoring.loop import ClosedLoop, complete_retrain
from shipyard.monitoring.passes import MonitorPass, last_high_water_mark, monitor_pass
from shipyard.monitoring.performance import PerformanceReport, PerformanceWindow, monitor_performance
from shipyard.monitoring.query import Window, query_predictions, read_window
from shipyard.monitoring.reference import EarlierWindow, Reference, training_dataset
from shipyard.monitoring.report import DriftReport, compute_drift, list_drift_reports, monitor_drift
from shipyard.monitoring.rules import AlertRule, AlertRules, Condition, parse_condition, parse_rules
from shipyard.monitoring.scheduled import MONITOR_PIPELINE, list_monitoring_schedules, schedule_monitoring
from shipyard.monitoring.status import MonitorStatus, monitor_status

__all__ = [
    "AlertRule",
    "AlertRules",
    "ClosedLoop",
    "Condition",
    "DriftReport",
    "EarlierWindow",
    "EstimateLimits",
    "FeatureDrift",
    "LabelJoin",
    "MONITOR_PIPELINE",
    "MonitorPass",
    "MonitorStatus",
    "PerformanceEstimate",
    "PerformanceReport",
    "PerformanceWindow",
    "Reference",
    "RuleOutcome",
    "Thresholds",
    "Window",
    "complete_retrain",
    "compute_drift",
    "estimate_performance",
    "evaluate_rules",
    "feature_drift",
    "get_alert",
    "join_labels",
    "last_high_water_mark",
    "list_alerts",
    "list_drift_reports",
    "list_monitoring_schedules",
    "log_feedback",
    "monitor_drift",
    "monitor_pass",
    "monitor_performance",
    "monitor_report",
    "monitor_status",
    "parse_condition",
    "parse_rules",
    "query_predictions",
    "read_window",
    "schedule_monitoring",
    "training_dataset",
]
