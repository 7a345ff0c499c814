"""The append-only, hash-chained audit log (layer 1).

Every change to data, models, aliases, policies and deployments appends an
entry (actor, time, action, object, before/after, reason). Each entry holds the
hash of the one before it, so ``verify_chain`` detects any edited, deleted or
reordered entry and says which.
"""

from shipyard.audit.chain import GENESIS, ChainReport, entry_hash, verify_chain

__all__ = ["ChainReport", "GENESIS", "entry_hash", "verify_chain"]
