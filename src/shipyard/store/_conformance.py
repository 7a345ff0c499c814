"""Static proof that each backend implements the protocols it claims (names and signatures).

Nothing here runs: mypy checks these functions, and a backend whose method is missing, renamed
or has a different signature than its protocol makes the ``return`` an incompatible type, so
the type check (``make lint``) fails naming the method. This replaces runtime ``isinstance``
checks, which only compare method names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__: list[str] = []

if TYPE_CHECKING:
    from shipyard.artifacts import BlobStore
    from shipyard.store.base import (
        AnnotatesModels,
        AuthStore,
        ChecksTokens,
        ClaimsScheduleFires,
        EditsExperiments,
        EditsRuns,
        ImportsRecords,
        KeepsLoggedModels,
        LocalGovernance,
        MonitoringStore,
        RemoteGovernance,
        ServesBlobs,
        Store,
        VerifiesCredentials,
    )
    from shipyard.store.rest import RestBlobStore, RestStore
    from shipyard.store.sql import SqlStore

    def _sql_store_is_a_store(store: SqlStore) -> Store:
        return store

    def _rest_store_is_a_store(store: RestStore) -> Store:
        return store

    def _sql_store_keeps_monitor_reports(store: SqlStore) -> MonitoringStore:
        return store

    def _rest_store_keeps_monitor_reports(store: RestStore) -> MonitoringStore:
        return store

    def _sql_store_has_local_governance(store: SqlStore) -> LocalGovernance:
        return store

    def _sql_store_annotates_models(store: SqlStore) -> AnnotatesModels:
        return store

    def _sql_store_claims_schedule_fires(store: SqlStore) -> ClaimsScheduleFires:
        return store

    def _sql_store_edits_experiments(store: SqlStore) -> EditsExperiments:
        return store

    def _sql_store_edits_runs(store: SqlStore) -> EditsRuns:
        return store

    def _sql_store_keeps_logged_models(store: SqlStore) -> KeepsLoggedModels:
        return store

    def _sql_store_imports_records(store: SqlStore) -> ImportsRecords:
        return store

    def _rest_store_serves_blobs(store: RestStore) -> ServesBlobs:
        return store

    def _rest_store_has_remote_governance(store: RestStore) -> RemoteGovernance:
        return store

    def _rest_blob_store_is_a_blob_store(blobs: RestBlobStore) -> BlobStore:
        return blobs

    def _sql_store_keeps_users(store: SqlStore) -> AuthStore:
        return store

    def _rest_store_manages_users(store: RestStore) -> AuthStore:
        return store

    def _sql_store_verifies_credentials(store: SqlStore) -> VerifiesCredentials:
        return store

    def _sql_store_checks_tokens(store: SqlStore) -> ChecksTokens:
        return store

    def _rest_store_checks_tokens(store: RestStore) -> ChecksTokens:
        return store
