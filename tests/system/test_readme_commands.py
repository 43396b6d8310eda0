"""The README's commands, as written, in a copy of this checkout below a 0700 folder (as a home folder or
``mktemp -d`` is), the way a new user meets the project: ``make demo``, then ``make up`` shows the demo's runs,
then every other command the README shows.

Every command line of the README's ``bash`` blocks is either run here (``RUN_ORDER``) or listed in
``NOT_RUN`` with the reason; a command added to the README without either fails this test. The copy gets
its own ``.venv`` (from uv's cache), its own ``.airflow`` and its own embedded PostgreSQL, which, as root, lives
outside the copy (the service user cannot reach a 0700 folder) and is removed by ``make clean``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from airflow_stack import report

from autopo_local.rest import AirflowClient
from autopo_local.stack import group_alive

pytestmark = pytest.mark.system

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
SAMPLE_ROOT = Path("/tmp/autopo-sample")  # the README's example of "any folder"
COMMAND_TIMEOUT_S = 900

# README commands this test does not run, and why.
NOT_RUN = {
    "make test": "the suite itself, which is running this test",
    "make test PYTEST_ARGS=\"-m 'not system'\"": "the suite itself, which is running this test",
    'export AIRFLOW_CONN_AUTOPO_SMTP=\'{"conn_type": "smtp", "host": "smtp.example.com", "port": 587, '
    '"login": "autopo", "password": "...", "extra": {"from_email": "autopo@example.com"}}\'': (
        "an example connection to a real mail server (the network); the system tests send mail to a loopback server"
    ),
    **dict.fromkeys(
        [
            "cp .env.example .env",
            "docker compose build",
            "docker compose up -d",
            "docker compose up -d --scale airflow-worker-stock-health=3",
        ],
        "needs a Docker engine (none on these machines or in CI): the compose file is checked by `make compose-check` "
        "(run below) and tests/unit/test_deployment_files.py, and its services' commands run natively in "
        "tests/system/test_distributed.py",
    ),
}
# The rest, in the order a new user meets them.
RUN_ORDER = [
    "make demo",
    "make up",
    "make status",
    "make api GET='/autopo/api/v1/runs?pipeline=stock_health'",
    "make dashboard-screenshot",
    "make airflow ARGS='dags list'",
    "make run PIPELINE=stock_health DATE=2024-12-05 DATA=/tmp/autopo-sample",  # refused while `make up` runs
    "make airflow ARGS='tasks clear stock_health --only-failed --downstream --task-regex transform_file --yes'",
    "make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03'",
    "make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03 "
    "--reprocess-behavior failed'",
    "make down",
    "make sample DATE=2024-12-05 DATA=/tmp/autopo-sample",
    "make run PIPELINE=stock_health DATE=2024-12-05 DATA=/tmp/autopo-sample",
    "make db-url",
    '.venv/bin/python -m autopo_pipelines.migrations --url "$(make -s db-url)" --dir migrations',
    "make check-config",
    "make pools",
    "make lint",
    "make compose-check",
    "make bench BENCH_ARGS='--stores 4 --rows 2000 --repeat 1 --scale 2,4 --scale-rows 500 --skip scheduler'",
    "make clean",
]


def readme_commands(text: str) -> list[str]:
    """Each command of the README's ``bash`` blocks as written: comments cut, a quoted value spanning lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        pending = ""
        for line in block.splitlines():
            text_so_far = f"{pending} {line.strip()}" if pending else line.strip()
            command, quote_open = _cut_comment(text_so_far)
            if quote_open:
                pending = text_so_far  # the command goes on on the next line
                continue
            pending = ""
            if command:
                commands.append(" ".join(command.split()))
        assert not pending, f"unterminated command in the README: {pending}"
    return commands


def _cut_comment(line: str) -> tuple[str, bool]:
    """The line up to a ``#`` comment outside quotes, and whether a quote is still open at its end."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), False
    return line.rstrip(), bool(quote)


@dataclass
class Clone:
    root: Path
    env: dict[str, str]
    api_port: int
    outputs: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, command: str, *, expect: int = 0) -> str:
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        self.timings[command] = time.monotonic() - started
        output = result.stdout + result.stderr
        self.outputs[command] = output
        assert result.returncode == expect, f"`{command}` exited {result.returncode}, not {expect}:\n{output[-6000:]}"
        return output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy_checkout(target: Path) -> None:
    """The files a clone would have, as they are in this working tree (uncommitted changes included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (raw.decode() for raw in listed)):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture
def clone() -> Iterator[Clone]:
    private = Path(tempfile.mkdtemp(prefix="autopo-readme-"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    root = private / "p"
    _copy_checkout(root)
    shutil.rmtree(SAMPLE_ROOT, ignore_errors=True)
    # A user's shell: none of this suite's settings, nor those of a `make test` this runs under
    # (MAKELEVEL would make the inner make print "Entering directory" lines into `make db-url`).
    inherited = ("AIRFLOW", "AUTOPO", "VIRTUAL_ENV", "PYTEST", "MAKE", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    api_port = _free_port()
    # `make up` takes its port from API_PORT (default 8080, which may be taken on a shared machine).
    env["API_PORT"] = str(api_port)
    made = Clone(root=root, env=env, api_port=api_port)
    try:
        yield made
    finally:
        state_path = root / ".airflow" / "local-stack.json"
        if state_path.exists():
            for pgid in json.loads(state_path.read_text(encoding="utf-8")).get("groups", {}).values():
                if group_alive(pgid):
                    os.killpg(pgid, signal.SIGKILL)
        if (root / ".venv").exists():
            subprocess.run(["make", "clean"], cwd=root, env=env, capture_output=True, timeout=300, check=False)
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(SAMPLE_ROOT, ignore_errors=True)


def test_every_readme_command_is_run_or_excused() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert commands[:2] == ["make demo", "make test"], "the README starts with the two commands"
    unaccounted = set(commands) - set(RUN_ORDER) - set(NOT_RUN)
    assert not unaccounted, f"README commands neither run nor excused by this test: {sorted(unaccounted)}"
    gone = (set(RUN_ORDER) | set(NOT_RUN)) - set(commands)
    assert not gone, f"commands this test runs that the README no longer shows: {sorted(gone)}"


def test_readme_commands_in_a_clone_below_a_0700_folder(clone: Clone, request: pytest.FixtureRequest) -> None:
    as_root = os.geteuid() == 0
    try:
        _walk_the_readme(clone, as_root)
    finally:
        report(
            request.config,
            "README commands: "
            + ", ".join(f"{command[:40]!r} {seconds:.0f}s" for command, seconds in clone.timings.items()),
        )


def _walk_the_readme(clone: Clone, as_root: bool) -> None:
    # make demo: everything set up, both pipelines' day loaded and summarised.
    demo = clone.run("make demo")
    assert demo.count("result: OK") == 2, demo[-4000:]
    assert "table rows for 2024-12-04: 8343" in demo and "table rows for 2024-12-04: 317" in demo
    notes = [line for line in demo.splitlines() if line.startswith("note: running as root")]
    if as_root:
        # Said once, in one line: what root needed of the system and where the cluster lives.
        assert len(notes) == 1, demo[:3000]
        assert f"{clone.root.parent} is not searchable by 'autopo-pg'" in notes[0]
        cluster = Path(notes[0].rsplit("so the cluster lives in ", 1)[1].split(";")[0].strip())
        assert cluster.is_dir() and not cluster.is_relative_to(clone.root.parent)
    assert stat.S_IMODE(clone.root.parent.stat().st_mode) == 0o700, "the user's folder kept its permissions"

    # make up: the UI of the same metadata database shows the demo's runs.
    up = clone.run("make up")
    state = json.loads((clone.root / ".airflow" / "local-stack.json").read_text(encoding="utf-8"))
    base = f"http://127.0.0.1:{clone.api_port}"
    assert f"UI at {base} (user admin, password {state['password']})" in up
    assert stat.S_IMODE((clone.root / ".airflow" / "local-stack.json").stat().st_mode) == 0o600
    token = _token(base, state["password"])
    runs = httpx.get(
        f"{base}/api/v2/dags/stock_health/dagRuns", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()["dag_runs"]
    demo_runs = [r for r in runs if r["conf"] == {"date": "2024-12-04"} and r["state"] == "success"]
    assert demo_runs and demo_runs[0]["triggered_by"] == "test", runs
    assert httpx.get(f"{base}/api/v2/dags/stock_health/dagRuns", timeout=30).status_code == 401
    assert "api-server: running" in clone.run("make status")
    # The dashboard's admin API lists the demo's run; the screenshot of its grid is a PNG.
    api = json.loads(clone.run("make api GET='/autopo/api/v1/runs?pipeline=stock_health'"))
    assert [(r["pipeline"], r["date"], r["status"]) for r in api["runs"] if r["date"] == "2024-12-04"] == [
        ("stock_health", "2024-12-04", "completed")
    ], api
    picture = clone.root / "docs" / "img" / "dashboard-grid.png"
    picture.unlink()
    clone.run("make dashboard-screenshot")
    assert picture.read_bytes().startswith(b"\x89PNG") and picture.stat().st_size > 20_000
    listed = clone.run("make airflow ARGS='dags list'")
    assert "po_snapshots" in listed and "stock_health" in listed

    # While `make up` runs on ./data, a run on another data root is refused with the reason, not mixed up.
    refused = clone.run("make run PIPELINE=stock_health DATE=2024-12-05 DATA=/tmp/autopo-sample", expect=2)
    assert f"`make up` runs on the data root {clone.root / 'data'}: `make down` first" in refused

    clone.run(
        "make airflow ARGS='tasks clear stock_health --only-failed --downstream --task-regex transform_file --yes'"
    )
    clone.run("make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03'")
    # "Later": Airflow runs one backfill of a DAG at a time. No files for those dates: each run fails at once.
    client = AirflowClient(base, "admin", state["password"])
    try:
        (first,) = client.get_json("/api/v2/backfills", dag_id="stock_health")["backfills"]
        client.wait_for_backfill(int(first["id"]), timeout=300)
        failed = {r["conf"].get("date") or r["logical_date"][:10]: r["state"] for r in client.dag_runs("stock_health")}
    finally:
        client.close()
    assert {failed.get(d) for d in ("2024-11-01", "2024-11-02", "2024-11-03")} == {"failed"}, failed
    clone.run(
        "make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03 "
        "--reprocess-behavior failed'"
    )
    backfills = httpx.get(
        f"{base}/api/v2/backfills", params={"dag_id": "stock_health"}, headers={"Authorization": f"Bearer {token}"}
    ).json()["backfills"]
    assert len(backfills) == 2 and backfills[1]["reprocess_behavior"] == "failed", backfills

    down = clone.run("make down")
    assert "stopped: api-server, scheduler, dag-processor, triggerer" in down
    assert not any(group_alive(pgid) for pgid in state["groups"].values())

    # One date on another folder, in-process now that the stack is down.
    clone.run("make sample DATE=2024-12-05 DATA=/tmp/autopo-sample")
    day = clone.run("make run PIPELINE=stock_health DATE=2024-12-05 DATA=/tmp/autopo-sample")
    assert "result: OK" in day and "ran without PO data for 2024-12-05" in day

    loaded = int(re.search(r"^table rows for 2024-12-05: (\d+)$", day, re.M).group(1))  # type: ignore[union-attr]
    # The URI make db-url prints is the warehouse the runs wrote to, usable as it is.
    url = clone.run("make db-url").strip().splitlines()[-1]
    with psycopg.connect(url, connect_timeout=10) as conn:
        counted = conn.execute("SELECT count(*) FROM stock_health_snapshots WHERE snapshot_date = '2024-12-05'")
        assert counted.fetchone() == (loaded,) and loaded > 0
    assert "applied 0 migration(s)" in clone.run(
        '.venv/bin/python -m autopo_pipelines.migrations --url "$(make -s db-url)" --dir migrations'
    )
    assert "ok: stock_health" in clone.run("make check-config")
    clone.run("make pools")
    clone.run("make lint")
    assert "ratios: " in clone.run(
        "make bench BENCH_ARGS='--stores 4 --rows 2000 --repeat 1 --scale 2,4 --scale-rows 500 --skip scheduler'"
    )

    clone.run("make clean")
    if as_root:
        assert not cluster.exists(), "make clean removes the cluster outside the clone"
    assert not (clone.root / ".pg").exists() and not (clone.root / ".airflow").exists()


def _token(base: str, password: str) -> str:
    deadline = time.monotonic() + 120
    while True:
        try:
            response = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
            if response.status_code == 201:
                return str(response.json()["access_token"])
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the API server at {base} gave no token in 120 s")
        time.sleep(1)
