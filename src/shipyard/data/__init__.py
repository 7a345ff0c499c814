"""Data as a versioned, validated record (layer 2).

Dataset versions (content-addressed Parquet in the artifact store, with lineage
to the runs that used them), data contracts (the shared column dictionary),
vectorized validation, one-pass profiles that later serve as drift references,
diffs between versions, and PII detection and anonymization.
"""

from shipyard.data.versions import diff_datasets, load_dataset, load_profile, log_dataset, parse_dataset_ref

__all__ = ["diff_datasets", "load_dataset", "load_profile", "log_dataset", "parse_dataset_ref"]
