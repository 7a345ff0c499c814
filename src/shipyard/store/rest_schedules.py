"""Pipeline schedules of ``RestStore`` (mixed in): each call maps onto a route of
``server/routers/schedules.py``. Claiming fire times is not here: only the server's own
scheduler does that, in its database (``ClaimsScheduleFires``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from shipyard.entities import PipelineSchedule, ScheduleFire

__all__ = ["RestSchedulesMixin"]

API = "/api/v1/schedules"


def _s(name: str) -> str:
    return f"{API}/{quote(name, safe='')}"


class RestSchedulesMixin:
    """Schedule calls over HTTP."""

    def _request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        raise NotImplementedError

    def _get(self, path: str, **params: Any) -> Any:
        raise NotImplementedError

    def save_schedule(self, schedule: PipelineSchedule) -> PipelineSchedule:
        body = {
            k: v
            for k, v in schedule.to_dict().items()
            if k in ("name", "ref", "cron", "every_seconds", "timezone", "params", "created_by")
        }
        return PipelineSchedule.from_dict(self._request("PUT", _s(schedule.name), body=body).json())

    def get_schedule(self, name: str) -> PipelineSchedule:
        return PipelineSchedule.from_dict(self._get(_s(name)))

    def list_schedules(self) -> list[PipelineSchedule]:
        return [PipelineSchedule.from_dict(s) for s in self._get(API)["items"]]

    def delete_schedule(self, name: str, actor: str = "") -> None:
        self._request("DELETE", _s(name), params={"actor": actor})

    def list_schedule_fires(self, name: str, limit: int = 100) -> list[ScheduleFire]:
        return [ScheduleFire(**f) for f in self._get(f"{_s(name)}/fires", limit=limit)["items"]]
