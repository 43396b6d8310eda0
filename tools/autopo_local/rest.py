"""Airflow's REST API (``/api/v2``) as the UI and scripts use it, with a JWT from the API server.

``make run`` triggers a day through it when ``make up``'s stack runs; the system tests drive
their stack only through it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
HTTP_TIMEOUT_S = 30


class AirflowStackError(RuntimeError):
    """The stack could not be started, or did not answer as expected in time."""


class AirflowClient:
    """The REST calls a user (or the UI) makes, against ``/api/v2``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT_S)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------

    def login(self) -> str:
        """A JWT from SimpleAuthManager's token endpoint (what the login form posts)."""
        response = self._http.post("/auth/token", json={"username": self._username, "password": self._password})
        if response.status_code != 201:
            raise AirflowStackError(f"login failed: HTTP {response.status_code} {response.text[:500]}")
        self._token = response.json()["access_token"]
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if self._token is None:
            self.login()
        for attempt in (1, 2):
            response = self._http.request(
                method, path, headers={**(headers or {}), "Authorization": f"Bearer {self._token}"}, **kwargs
            )
            if response.status_code == 401 and attempt == 1:
                self.login()  # expired token: log in again once
                continue
            break
        if response.status_code not in set(expect):
            raise AirflowStackError(f"{method} {path}: HTTP {response.status_code} {response.text[:2000]}")
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    # -- what the tests use -----------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/api/v2/dags/{dag_id}", expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def import_errors(self) -> list[dict[str, Any]]:
        return self.get_json("/api/v2/importErrors")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def trigger(
        self,
        dag_id: str,
        conf: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        logical_date: str | None = None,
    ) -> str:
        """Trigger a manual run; returns its run id.

        ``logical_date`` has no default in 3.3's ``TriggerDAGRunPostBody``: omitting it is a 422.
        ``null`` gives a run without a logical date (what the UI's trigger form sends by default).
        """
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id is not None:
            body["dag_run_id"] = run_id
        response = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        return str(response.json()["dag_run_id"])

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, reprocess_behavior: str = "none") -> int:
        """What ``airflow backfill create`` does, through ``POST /api/v2/backfills``; the backfill's id."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date,
            "to_date": to_date,
            "run_backwards": False,
            "dag_run_conf": {},
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": 3,
        }
        return int(self.request("POST", "/api/v2/backfills", json=body).json()["id"])

    def wait_for_backfill(self, backfill_id: int, timeout: float) -> dict[str, Any]:
        """Until the scheduler has marked the backfill complete (all its runs ended); the backfill."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = self.get_json(f"/api/v2/backfills/{backfill_id}")
            if backfill.get("completed_at"):
                return dict(backfill)
            time.sleep(1)
        raise AirflowStackError(f"backfill {backfill_id} not completed after {timeout:.0f}s")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get_json(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get_json(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, *, fail_on_retry: bool = True, poll: float = 1.0
    ) -> str:
        """Poll the run until it is ``success`` or ``failed``; returns that state.

        ``fail_on_retry``: a task waiting for a retry (the pipelines' retry delay is
        minutes) ends the wait at once with the task's log, instead of timing out.
        """
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_RUN_STATES:
                return str(state)
            if fail_on_retry:
                retrying = [ti for ti in self.task_instances(dag_id, run_id) if ti["state"] == "up_for_retry"]
                if retrying:
                    ti = retrying[0]
                    log = self.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                    raise AirflowStackError(
                        f"{dag_id}/{run_id}: {ti['task_id']}[{ti['map_index']}] is up for retry; its log:\n{log}"
                    )
            time.sleep(poll)
        summary = [(ti["task_id"], ti["map_index"], ti["state"]) for ti in self.task_instances(dag_id, run_id)]
        raise AirflowStackError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f}s; tasks: {summary}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones one per map index), all fields of the API."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get_json(
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                limit=100,
                offset=offset,
                order_by="map_index",
            )
            items.extend(page["task_instances"])
            offset += len(page["task_instances"])
            if not page["task_instances"] or offset >= page["total_entries"]:
                return items

    def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: Sequence[str | tuple[str, int]],
        *,
        only_failed: bool = True,
        include_downstream: bool = False,
        include_upstream: bool = False,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        """``POST /api/v2/dags/{dag_id}/clearTaskInstances`` with the body the UI's Clear dialog sends.

        ``task_ids`` items are task ids or ``(task_id, map_index)`` pairs (sent as
        ``[task_id, map_index]``). The API's ``dry_run`` defaults to *true*; the UI
        sends false explicitly, and so does this. Returns the task instances cleared
        (or, with ``dry_run``, that would be).
        """
        body = {
            "dag_run_id": run_id,
            "dry_run": dry_run,
            "task_ids": [list(t) if isinstance(t, tuple) else t for t in task_ids],
            "only_failed": only_failed,
            "include_downstream": include_downstream,
            "include_upstream": include_upstream,
            "include_future": False,
            "include_past": False,
        }
        response = self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return list(response.json()["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's log as text (best effort: for failure messages)."""
        try:
            response = self.request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                params={"map_index": map_index, "full_content": True},
                # JSON: {"content": [{"timestamp", "event", "level", ...} | "line"], "continuation_token"}.
                # text/plain is a 406 on this endpoint (JSON or NDJSON only).
                headers={"Accept": "application/json"},
                expect=(200,),
            )
        except (AirflowStackError, httpx.HTTPError) as exc:
            return f"<log not available: {exc}>"
        lines = []
        for entry in response.json().get("content", []):
            if isinstance(entry, dict):
                level = entry.get("level", "")
                extra = entry.get("error_detail") or ""
                lines.append(f"{entry.get('timestamp') or ''} {level} {entry.get('event', '')} {extra}".rstrip())
            else:
                lines.append(str(entry))
        return "\n".join(lines)[-8000:]
