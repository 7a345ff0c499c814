"""The append-only, hash-chained audit log (layer 1).

Every change to data, models, aliases, policies and deployments appends an entry (actor, time,
action, object, before/after, reason), written by the store method that makes the change, in the
same transaction. Each entry holds the hash of the one before it, so ``verify_chain`` detects any
edited, deleted or reordered entry and says which; checkpoints of the chain's head kept outside
the database (``Checkpoint``, ``CheckpointLog``) detect truncation and consistent rewrites; and
``implied_registry_state`` replays the chain so aliases and policies can be compared with it.
"""

from shipyard.audit.anchor import Checkpoint, CheckpointLog, latest, load_key, read_pinned
from shipyard.audit.chain import GENESIS, ChainReport, entry_hash, verify_chain
from shipyard.audit.state import RegistryState, compare_registry, implied_registry_state
from shipyard.audit.verify import AuditSource, verify_store

__all__ = [
    "AuditSource",
    "ChainReport",
    "Checkpoint",
    "CheckpointLog",
    "GENESIS",
    "RegistryState",
    "compare_registry",
    "entry_hash",
    "implied_registry_state",
    "latest",
    "load_key",
    "read_pinned",
    "verify_chain",
    "verify_store",
]
