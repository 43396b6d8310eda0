"""Airflow on Celery as ``docker-compose.yaml`` describes it, run natively on this machine, with
workers that share no disk: the harness of ``tests/system/test_distributed.py`` (``make test-distributed``).

There is no Docker engine here, so the compose file is resolved with the real parser
(``docker-compose --env-file <env file> -f docker-compose.yaml config``, Debian's docker-compose)
and each Airflow service is started from its resolved ``command:`` and ``environment:``:
``airflow <command>`` (the image's entrypoint runs a command as Airflow's CLI), and
``airflow-init``'s own bash script. The env file points every address a service uses to reach
another at a server of the test on loopback (PostgreSQL, Redis, the GCS emulator, the API server,
a StatsD socket) and gives the secrets. What a native run adds to a service's environment, and
why, is in ``native_additions``, ``image_paths`` and the ``start_*`` methods; nothing else of the
compose file is changed.

Each Celery worker runs under ``unshare --mount --uts``: its own hostname (the ``hostname``
column of the task instances it runs) and private tmpfs mounts over its temporary folder
(``TMPDIR``) and over the local data folder, at the same paths for every worker, so no worker
can read what another wrote to local disk. Killing a worker kills every process of its
namespace (the task processes lead process groups of their own, so the worker's group alone is
not all of it).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from autopo_local.embedded_pg import free_port
from autopo_local.private_files import write_private
from autopo_local.rest import AirflowClient, AirflowStackError
from autopo_local.stack import fernet_key, group_alive, start_in_own_group, tail
from autopo_local.throwaway_stack import ApiReadiness

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
VENV_BIN = Path(sys.executable).parent

# The compose file's services (its contract with this test).
INIT = "airflow-init"
API_SERVER = "airflow-apiserver"
SCHEDULER = "airflow-scheduler"
DAG_PROCESSOR = "airflow-dag-processor"
TRIGGERER = "airflow-triggerer"
STOCK_WORKER = "airflow-worker-stock-health"
PO_WORKER = "airflow-worker-po-snapshots"
SERVERS = (API_SERVER, SCHEDULER, DAG_PROCESSOR, TRIGGERER)
REQUIRED_SERVICES = ("postgres", "redis", INIT, *SERVERS, STOCK_WORKER, PO_WORKER)
# Every variable the contract says a service's addresses come from; the env file sets each one.
ADDRESS_VARIABLES = (
    "AIRFLOW_DATABASE_URL",
    "AIRFLOW_CELERY_BROKER_URL",
    "AIRFLOW_CELERY_RESULT_BACKEND",
    "AIRFLOW_EXECUTION_API_URL",
    "AIRFLOW_CONN_AUTOPO_DB",
    "AUTOPO_DATA_DIR",
    "AUTOPO_DATA_CONN_ID",
    "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
    "STATSD_HOST",
    "STATSD_PORT",
)
# Names of services on the compose network: a resolved address still naming one was not pointed
# at loopback by the env file.
NETWORK_NAMES = (
    "postgres", "redis", "airflow-apiserver", "statsd-exporter", "gcs-emulator", "prometheus", "flower",
)  # fmt: skip

# The image's AIRFLOW_HOME: Airflow's image, with the checkout's dags/, plugins/, migrations/ and
# airflow.cfg in it, and the compose file's volumes (logs, auth) mounted below it.
IMAGE_HOME = "/opt/airflow"

ADMIN_USER = "admin"
READY_TIMEOUT_S = 150
STOP_GRACE_S = 20


class DistributedStackError(AirflowStackError):
    """The compose file could not be resolved or run natively, or a component did not come up."""


# --------------------------------------------------------------------------- the compose file


@dataclass(frozen=True)
class ComposeService:
    """One service of ``docker-compose config``'s output: what a native run needs of it."""

    name: str
    command: tuple[str, ...]
    entrypoint: tuple[str, ...]
    environment: dict[str, str]
    healthcheck: tuple[str, ...]


def image_paths(home: Path) -> dict[str, str]:
    """Where what the image holds, or the compose file mounts, under its AIRFLOW_HOME is on this
    machine: the checkout's folders and airflow.cfg, else the native run's own home (``home``,
    per host: the servers share one, as the containers share the airflow-logs and airflow-auth
    volumes; each worker has its own)."""
    return {
        f"{IMAGE_HOME}/airflow.cfg": str(REPO_ROOT / "airflow.cfg"),
        f"{IMAGE_HOME}/dags": str(REPO_ROOT / "dags"),
        f"{IMAGE_HOME}/plugins": str(REPO_ROOT / "plugins"),
        f"{IMAGE_HOME}/migrations": str(REPO_ROOT / "migrations"),
        IMAGE_HOME: str(home),
    }


def native_path(value: str, paths: Mapping[str, str]) -> str:
    """``value`` with every image path in it (longest first) replaced by its native place."""
    for image_path in sorted(paths, key=len, reverse=True):
        value = re.sub(re.escape(image_path) + r"(?![\w.-])", lambda _m, p=image_path: paths[p], value)
    return value


def _unescape(value: str) -> str:
    """``docker-compose config`` writes a literal ``$`` as ``$$`` again; the container gets ``$``."""
    return value.replace("$$", "$")


def _words(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(_unescape(word) for word in shlex.split(value))
    return tuple(_unescape(str(v)) for v in value)


def _environment(raw: object) -> dict[str, str]:
    if isinstance(raw, list):  # the list form: "KEY=value"
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    # A key without a value passes the variable of the engine's own environment: unset here.
    return {str(k): _unescape(str(v)) for k, v in (raw or {}).items() if v is not None}


def compose_variables(compose_file: Path) -> set[str]:
    """The ``${VAR}`` names the compose file interpolates."""
    text = compose_file.read_text(encoding="utf-8")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(
        re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text)
    )


def resolve_compose(compose_file: Path, env_file: Path) -> tuple[dict[str, ComposeService], str]:
    """``docker-compose --env-file ENV -f FILE config``, parsed: the services, and the resolved YAML.

    docker-compose interpolates from its own environment before the env file, so it runs with
    nothing of this process's environment but PATH and HOME: only the env file decides.
    """
    fixed = sorted(set(ADDRESS_VARIABLES) - compose_variables(compose_file))
    if fixed:
        raise DistributedStackError(f"{compose_file.name} does not take these addresses from variables: {fixed}")
    compose = shutil.which("docker-compose")
    if compose is None:
        raise DistributedStackError("docker-compose is not installed: apt-get install -y docker-compose")
    result = subprocess.run(
        [compose, "--env-file", str(env_file), "-f", str(compose_file), "config"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")},
        cwd=compose_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise DistributedStackError(f"docker-compose config failed ({result.returncode}):\n{result.stderr[-4000:]}")
    unset = sorted(set(re.findall(r"The (\w+) variable is not set", result.stderr)))
    if unset:
        raise DistributedStackError(f"{compose_file.name} uses variables the test's env file does not set: {unset}")
    document = yaml.safe_load(result.stdout)
    services = {}
    for name, raw in (document.get("services") or {}).items():
        services[name] = ComposeService(
            name=name,
            command=_words(raw.get("command")),
            entrypoint=_words(raw.get("entrypoint")),
            environment=_environment(raw.get("environment")),
            healthcheck=_words((raw.get("healthcheck") or {}).get("test")),
        )
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    if missing:
        raise DistributedStackError(f"{compose_file.name} has no service {missing}; it has {sorted(services)}")
    # Every address of an Airflow service comes from a variable: none may still name the network's hosts.
    unresolved = [
        f"{name}: {key}={value}"
        for name in (INIT, *SERVERS, STOCK_WORKER, PO_WORKER)
        for key, value in services[name].environment.items()
        if re.search(r"(//|@)(" + "|".join(map(re.escape, NETWORK_NAMES)) + r")[:/]", value)
        or (key.endswith("_HOST") and value in NETWORK_NAMES)
    ]
    if unresolved:
        raise DistributedStackError("addresses the env file did not point elsewhere:\n" + "\n".join(unresolved))
    return services, result.stdout


def write_env_file(path: Path, values: Mapping[str, str]) -> Path:
    """KEY=value lines, as docker-compose reads them (no quoting: a value is taken as it is)."""
    for key, value in values.items():
        if "\n" in value or "$" in value:
            raise ValueError(f"{key}: an env file value cannot hold a newline or a '$'")
    write_private(path, "".join(f"{key}={value}\n" for key, value in values.items()))
    return path


# --------------------------------------------------------------------------- loopback servers


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port (no persistence); its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DistributedStackError("redis-server is not installed: apt-get install -y redis-server")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "redis.log"
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(log), "--daemonize", "no", "--protected-mode", "yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise DistributedStackError(f"redis-server exited with {process.returncode}:\n{tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise DistributedStackError(f"redis-server did not answer on port {port}:\n{tail(log)}")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class StatsdSink:
    """A UDP socket on loopback where the services' StatsD metrics land; counts the metric names."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.5)
        self.port = int(self.socket.getsockname()[1])
        self.metrics: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="statsd-sink", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode("utf-8", "replace").splitlines():
                name = line.split(":", 1)[0]
                self.metrics[name] = self.metrics.get(name, 0) + 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.socket.close()


# --------------------------------------------------------------------------- processes


def base_environment() -> dict[str, str]:
    """What a container's process has before its service's ``environment:``: a PATH (here this
    checkout's venv first, where ``airflow`` is), HOME and the locale. Nothing of the test
    process's own Airflow settings (tests/airflow_env.py sets some) or connections leaks in."""
    keep = ("HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    return env


@dataclass
class Process:
    """A service started natively: its process (leader of its own process group) and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]
    argv: list[str]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


def spawn(name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        log_file.write(f"\n===== {time.strftime('%H:%M:%S')} {shlex.join(argv)}\n".encode())
        log_file.flush()
        popen = start_in_own_group(argv, env, cwd, log_file)
    return Process(name, popen, log_path, dict(env), list(argv))


def namespace_pids(namespace: str, kind: str = "uts") -> list[int]:
    """Every process in the ``kind`` namespace ``namespace`` (``uts:[4026532175]``), never ours."""
    if namespace == os.readlink(f"/proc/self/ns/{kind}"):
        raise DistributedStackError(f"{namespace} is this process's own namespace: refusing to list it for killing")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / kind) == namespace:
                    found.append(int(entry.name))
    return found


def stop_process(
    process: Process, sig: int = signal.SIGTERM, grace_s: float = STOP_GRACE_S, *, group: bool = True
) -> str | None:
    """Signal the process group (``group``) or the process alone, wait until its group is gone;
    SIGKILL to the group after the grace period. What had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not process.alive() and not group_alive(process.pid):
            return None
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.popen.wait(timeout=10)
    return f"{process.name} (process group {process.pid}) did not stop in {grace_s:.0f}s; killed"


# The worker's "host": its hostname, then a private tmpfs over its TMPDIR and over the local data
# folder (same paths on every worker, private contents), then the worker in that folder.
WORKER_SHELL = (
    'set -eu; hostname "$1"; '
    'mount -t tmpfs -o mode=1777,size=512m autopo-worker-tmp "$2"; '
    'mount -t tmpfs -o mode=0755,size=512m autopo-worker-data "$3"; '
    'cd "$4"; shift 4; exec "$@"'
)


@dataclass
class Worker(Process):
    """A Celery worker on its own "host" (``unshare --mount --uts``; ``start_worker``)."""

    hostname: str = ""
    queue: str = ""
    service: str = ""
    uts_namespace: str = ""

    def namespace(self) -> str:
        """Its UTS namespace, once unshare has made it (read while the worker runs, kept after)."""
        if not self.uts_namespace:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    current = os.readlink(f"/proc/{self.pid}/ns/uts")
                    if current != os.readlink("/proc/self/ns/uts") and self.alive():
                        self.uts_namespace = current
                        break
                time.sleep(0.05)
            else:
                raise DistributedStackError(f"{self.name}: no namespace of its own")
        return self.uts_namespace

    def kill_namespace(self) -> list[int]:
        """SIGKILL every process of the worker's namespace (the worker, its pool, the task
        supervisors and task processes, which lead process groups of their own); their pids."""
        pids = namespace_pids(self.namespace())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_state(pid) not in ("Z", "gone") for pid in pids):
            if time.monotonic() > deadline:
                raise DistributedStackError(f"{self.hostname}: processes {pids} still alive after SIGKILL")
            time.sleep(0.05)
        return pids


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "gone"


# --------------------------------------------------------------------------- the stack


@dataclass
class DistributedStack(ApiReadiness):
    """Airflow from the compose file, natively: servers, workers, the REST client."""

    base: Path
    compose_file: Path
    services: dict[str, ComposeService]
    resolved_yaml: str
    additions: dict[str, str]
    api_url: str
    client: AirflowClient
    metadata_url: str
    broker_url: str
    private_tmp: Path
    private_data: Path
    servers: dict[str, Process] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    # Workers killed or stopped, and servers replaced: their logs are still wanted.
    gone: list[Process] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def server_home(self) -> Path:
        return self.base / "airflow-home"

    # -- environments --------------------------------------------------------------

    def service_environment(self, name: str, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The service's resolved ``environment:`` with image paths made native, what every native
        process adds (``native_additions``), its home, and ``extra``."""
        paths = image_paths(home)
        env = base_environment()
        env.update({key: native_path(value, paths) for key, value in self.services[name].environment.items()})
        env.update(self.additions)
        env["AIRFLOW_HOME"] = str(home)
        env.update(extra or {})
        return env

    def airflow_argv(self, name: str) -> list[str]:
        """``airflow <command:>``: the image's entrypoint runs a command as Airflow's CLI."""
        service = self.services[name]
        if service.entrypoint or not service.command:
            raise DistributedStackError(
                f"{name}: entrypoint {service.entrypoint!r} command {service.command!r} is not an airflow command"
            )
        return [str(VENV_BIN / "airflow"), *service.command]

    def run_init(self, timeout: float = 600) -> str:
        """``airflow-init`` as the file has it: its entrypoint (bash) with its command (the script),
        image paths made native (its migrations folder is the checkout's). Its output."""
        service = self.services[INIT]
        if not service.entrypoint or Path(service.entrypoint[0]).name != "bash":
            raise DistributedStackError(f"{INIT}: entrypoint {service.entrypoint!r}, expected bash")
        paths = image_paths(self.server_home)
        argv = ["/bin/bash", *service.entrypoint[1:], *(native_path(word, paths) for word in service.command)]
        env = self.service_environment(INIT, self.server_home)
        log_path = self.base / "logs" / f"{INIT}.log"
        t0 = time.monotonic()
        with log_path.open("wb") as log_file:
            result = subprocess.run(
                argv, env=env, cwd=self.server_home, stdout=log_file, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise DistributedStackError(f"{INIT} failed ({result.returncode}); its output:\n{tail(log_path, 80)}")
        self.timings["init"] = time.monotonic() - t0
        return log_path.read_text(encoding="utf-8", errors="replace")

    # -- servers ---------------------------------------------------------------------

    def start_server(self, name: str) -> Process:
        """One of the servers, on the servers' shared home. Added: ports of its own for what would
        listen on a fixed port in its own container (one network here): the log servers (8793,
        8794) and the scheduler's health check server (8974, which the file turns on)."""
        health_port = free_port()
        extra = {
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
        }
        process = spawn(
            name, self.airflow_argv(name), self.service_environment(name, self.server_home, extra), self.server_home,
            self.base / "logs" / f"{name}.log",
        )  # fmt: skip
        self.servers[name] = process
        return process

    def scheduler_health(self) -> int | None:
        """The scheduler's own health check (the file's healthcheck: GET /health); its HTTP status."""
        import httpx

        port = self.servers[SCHEDULER].env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code
        except httpx.HTTPError:
            return None

    def restart_scheduler(self) -> tuple[float, float]:
        """SIGTERM the scheduler, wait for it to exit, start it again; (stop s, start-to-running s)."""
        old = self.servers.pop(SCHEDULER)
        self.gone.append(old)
        t0 = time.monotonic()
        # As the container's init does: SIGTERM to the scheduler process itself.
        problem = stop_process(old, signal.SIGTERM, grace_s=60, group=False)
        if problem:
            raise DistributedStackError(f"scheduler restart: {problem}")
        stopped = time.monotonic() - t0
        t0 = time.monotonic()
        after = time.time()
        self.start_server(SCHEDULER)
        self.wait_for_scheduler_job(after=after)
        return stopped, time.monotonic() - t0

    def wait_for_scheduler_job(self, after: float, timeout: float = READY_TIMEOUT_S) -> None:
        """Until a SchedulerJob started after ``after`` (epoch seconds) is running and heartbeating."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with psycopg.connect(self.metadata_url.replace("+psycopg2", "")) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM job WHERE job_type = 'SchedulerJob' AND state = 'running' "
                    "AND start_date > to_timestamp(%s) AND latest_heartbeat > start_date",
                    (after,),
                ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.5)
        raise DistributedStackError(f"no new scheduler job heartbeating after {timeout:.0f}s")

    # -- workers ---------------------------------------------------------------------

    def start_worker(self, service_name: str, hostname: str, queue: str) -> Worker:
        """A worker service on a "host" of its own (``Worker``). Added: its own AIRFLOW_HOME (the
        image's, where its logs volume is: per host; and two workers on one home refuse to start,
        for the pid file ``airflow-worker.pid``), ``TMPDIR`` (its private tmpfs), ports of its own
        for its log servers."""
        home = self.base / "workers" / hostname
        home.mkdir(parents=True, exist_ok=True)
        extra = {
            "TMPDIR": str(self.private_tmp),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        env = self.service_environment(service_name, home, extra)
        argv = self.airflow_argv(service_name)
        option = "-q" if "-q" in argv else "--queues"
        if option not in argv or queue not in argv[argv.index(option) + 1].split(","):
            raise DistributedStackError(f"{service_name}: command {argv[1:]} does not serve the queue {queue!r}")
        wrapped = [
            "unshare", "--mount", "--uts", "--",
            "/bin/sh", "-c", WORKER_SHELL, "worker-host",
            hostname, str(self.private_tmp), str(self.private_data), str(self.private_tmp.parent),
            *argv,
        ]  # fmt: skip
        process = spawn(f"worker {hostname}", wrapped, env, home, self.base / "logs" / f"worker-{hostname}.log")
        worker = Worker(
            process.name, process.popen, process.log_path, process.env, process.argv, hostname, queue, service_name
        )
        worker.namespace()
        self.workers[hostname] = worker
        return worker

    def celery_workers(self) -> dict[str, list[str]]:
        """Workers answering on the broker: ``celery@<hostname>`` -> the queues it consumes."""
        from celery import Celery

        app = Celery(broker=self.broker_url)
        try:
            answer = app.control.inspect(timeout=1.0).active_queues() or {}
        finally:
            app.close()
        return {name: sorted(q["name"] for q in queues) for name, queues in answer.items()}

    def wait_for_workers(self, hostnames: Sequence[str], timeout: float = READY_TIMEOUT_S) -> dict[str, list[str]]:
        deadline = time.monotonic() + timeout
        answer: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            answer = self.celery_workers()
            if all(f"celery@{h}" in answer for h in hostnames):
                return answer
            time.sleep(1)
        raise DistributedStackError(f"workers {list(hostnames)} not on the broker after {timeout:.0f}s: {answer}")

    def worker_healthchecks(self) -> dict[str, int]:
        """Each worker's healthcheck as the file has it (``celery ... inspect ping -d
        celery@$HOSTNAME``), run in the worker's environment with its hostname; exit codes."""

        def check(worker: Worker) -> int:
            test = self.services[worker.service].healthcheck
            if not test or test[0] != "CMD-SHELL":
                raise DistributedStackError(f"{worker.service}: healthcheck {test!r} is not CMD-SHELL")
            env = {**worker.env, "HOSTNAME": worker.hostname}
            result = subprocess.run(
                ["/bin/sh", "-c", test[1]], env=env, cwd=worker.env["AIRFLOW_HOME"], capture_output=True,
                text=True, timeout=120, check=False,
            )  # fmt: skip
            return result.returncode

        with ThreadPoolExecutor(max_workers=len(self.workers)) as pool:
            codes = dict(zip(self.workers, pool.map(check, self.workers.values()), strict=True))
        return codes

    def kill_worker(self, hostname: str) -> list[int]:
        worker = self.workers.pop(hostname)
        self.gone.append(worker)
        return worker.kill_namespace()

    def stop_worker(self, hostname: str) -> str | None:
        """A warm shutdown, as the file's workers get it (``DUMB_INIT_SETSID: "0"``: SIGTERM to the
        Celery main process only, which waits for its running tasks); what is left of its
        namespace then killed."""
        worker = self.workers.pop(hostname)
        self.gone.append(worker)
        problem = stop_process(worker, signal.SIGTERM, grace_s=60, group=False)
        with contextlib.suppress(DistributedStackError):
            worker.kill_namespace()
        return problem

    # -- health ------------------------------------------------------------------------

    def check_alive(self) -> None:
        for process in [*self.servers.values(), *self.workers.values()]:
            if not process.alive():
                raise DistributedStackError(
                    f"{process.name} exited with {process.popen.returncode}; its log:\n{tail(process.log_path)}"
                )

    # -- the end ------------------------------------------------------------------------

    def logs_report(self, lines: int = 60) -> str:
        parts = []
        for process in [*self.servers.values(), *self.workers.values(), *self.gone]:
            parts.append(f"===== {process.name} (pid {process.pid}, last {lines} lines) =====")
            parts.append(tail(process.log_path, lines))
        task_logs = sorted(self.base.glob("workers/*/logs/**/*.log"), key=lambda p: p.stat().st_mtime)
        for log in task_logs[-6:]:
            parts.append(f"===== task log {log.relative_to(self.base)} (last 30 lines) =====")
            parts.append(tail(log, 30))
        return "\n".join(parts)

    def stop(self) -> list[str]:
        """Workers first (warm shutdown, then their namespaces killed), then the servers."""
        self.client.close()
        problems = []
        for hostname in list(self.workers):
            problem = self.stop_worker(hostname)
            if problem:
                problems.append(problem)
        for name in list(self.servers):
            problem = stop_process(self.servers.pop(name), signal.SIGTERM)
            if problem:
                problems.append(problem)
        return problems


def native_additions(*, api_port: int, config_dir: Path) -> dict[str, str]:
    """What every service gets on top of its compose ``environment:`` to run natively here, and why.

    * ``AIRFLOW_CONFIG``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``AIRFLOW__CORE__PLUGINS_FOLDER``: the
      image has the checkout's airflow.cfg, dags/ and plugins/ in its AIRFLOW_HOME, where Airflow
      looks by default; natively they are the checkout's, and each AIRFLOW_HOME is the run's own.
    * ``AIRFLOW__API__HOST``/``PORT``/``BASE_URL``: the API server on loopback on a free port (in
      compose it listens on 8080 in its own container; ``AIRFLOW_EXECUTION_API_URL`` in the env
      file points at this port).
    * ``AUTOPO_CONFIG_DIR``: the test's copies of the pipeline configs, whose ``source:`` is the
      emulator's bucket (the checkout's read an inbox), one transform per file, a retry after 1 s.
    * short failure detection besides the heartbeat timeout (which the env file sets through the
      compose file's AIRFLOW_TASK_HEARTBEAT_TIMEOUT): the timeout is checked every 2 s, a task left
      queued by a dead worker is sent again after 60 s (default 600), orphaned tasks of a restarted
      scheduler are looked for every 10 s (default 300; it also runs at its start).
    """
    api_url = f"http://127.0.0.1:{api_port}"
    return {
        "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AUTOPO_CONFIG_DIR": str(config_dir),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
        "PYTHONUNBUFFERED": "1",
    }


# --------------------------------------------------------------------------- starting it

METADATA_DB = "airflow_distributed"


def env_file_values(
    *,
    metadata_url: str,
    broker_url: str,
    api_port: int,
    warehouse_url: str,
    data_root_url: str,
    google_connection: str,
    emulator_host: str,
    statsd_port: int,
    worker_concurrency: int,
    keys: Mapping[str, str],
) -> dict[str, str]:
    """The env file: every address a service uses pointed at the test's servers on loopback, the
    secrets, and the variables the file offers for the rest."""
    return {
        "AIRFLOW_DATABASE_URL": metadata_url,
        "AIRFLOW_CELERY_BROKER_URL": broker_url,
        # Celery's task states in the metadata database, as the file's default does.
        "AIRFLOW_CELERY_RESULT_BACKEND": f"db+{metadata_url}",
        "AIRFLOW_EXECUTION_API_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW_CONN_AUTOPO_DB": warehouse_url,
        "AUTOPO_DATA_DIR": data_root_url,
        "AUTOPO_DATA_CONN_ID": "google_cloud_default",
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": google_connection,
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(statsd_port),
        # The emulator (the file passes these through when set; the local profile's lines of .env).
        "STORAGE_EMULATOR_HOST": emulator_host,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        # Two task slots per worker on a 2-core runner (the file's default is 4).
        "AIRFLOW_WORKER_CONCURRENCY": str(worker_concurrency),
        # A dead worker's running tasks are retried once their heartbeat is 20 s late (the file's default 300).
        "AIRFLOW_TASK_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW_FERNET_KEY": keys["fernet_key"],
        "AIRFLOW_JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW_API_SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW_ADMIN_USERNAME": ADMIN_USER,
        "AIRFLOW_ADMIN_PASSWORD": keys["password"],
    }


def new_secrets() -> dict[str, str]:
    return {
        "fernet_key": fernet_key(),
        # 64 bytes: Airflow signs its tokens with HS512, and warns about a shorter key.
        "jwt_secret": secrets.token_urlsafe(64),
        "api_secret_key": secrets.token_urlsafe(64),
        "password": secrets.token_urlsafe(16),
    }


@contextlib.contextmanager
def distributed_stack(
    *,
    base: Path,
    compose_file: Path,
    cluster_url: str,
    warehouse_url: str,
    broker_url: str,
    data_root_url: str,
    google_connection: str,
    emulator_host: str,
    config_dir: Path,
    statsd_port: int,
    dag_ids: Sequence[str],
    workers: Sequence[tuple[str, str, str]],
    worker_concurrency: int = 2,
) -> Iterator[DistributedStack]:
    """The whole stack up (``workers``: (service, hostname, queue)); stopped and its metadata
    database dropped at the end. ``cluster_url``: ``postgresql://user:password@host:port``; the
    warehouse database must exist (airflow-init migrates it)."""
    from autopo_local.stack import create_metadata_db, drop_metadata_db

    timings: dict[str, float] = {}
    started = time.monotonic()
    for folder in ("airflow-home", "logs", "workers", "private/tmp", "private/data"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    admin_url = f"{cluster_url}/postgres"
    # The compose file's postgres makes its databases with deploy/postgres/init-databases.sh; here
    # they are databases of the suite's cluster (the warehouse made by the caller).
    create_metadata_db(admin_url, METADATA_DB, replace=True)
    metadata_url = cluster_url.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{METADATA_DB}"
    keys = new_secrets()
    api_port = free_port()
    stack: DistributedStack | None = None
    try:
        env_file = write_env_file(
            base / "distributed.env",
            env_file_values(
                metadata_url=metadata_url,
                broker_url=broker_url,
                api_port=api_port,
                warehouse_url=warehouse_url,
                data_root_url=data_root_url,
                google_connection=google_connection,
                emulator_host=emulator_host,
                statsd_port=statsd_port,
                worker_concurrency=worker_concurrency,
                keys=keys,
            ),
        )
        t0 = time.monotonic()
        services, resolved = resolve_compose(compose_file, env_file)
        (base / "docker-compose.resolved.yaml").write_text(resolved, encoding="utf-8")
        timings["compose_config"] = time.monotonic() - t0
        api_url = f"http://127.0.0.1:{api_port}"
        stack = DistributedStack(
            base=base,
            compose_file=compose_file,
            services=services,
            resolved_yaml=resolved,
            additions={
                **native_additions(api_port=api_port, config_dir=config_dir),
            },
            api_url=api_url,
            client=AirflowClient(api_url, ADMIN_USER, keys["password"]),
            metadata_url=metadata_url,
            broker_url=broker_url,
            private_tmp=base / "private" / "tmp",
            private_data=base / "private" / "data",
            timings=timings,
        )
        try:
            start_all(stack, dag_ids, workers)
        except BaseException:
            sys.stderr.write(f"\ndistributed stack failed to start; its logs:\n{stack.logs_report()}\n")
            raise
        timings["startup_total"] = time.monotonic() - started
        yield stack
    finally:
        if stack is not None:
            stopping = time.monotonic()
            for problem in stack.stop():
                sys.stderr.write(f"distributed stack teardown: {problem}\n")
            timings["teardown"] = time.monotonic() - stopping
        with contextlib.suppress(Exception):
            drop_metadata_db(admin_url, METADATA_DB)


def start_all(stack: DistributedStack, dag_ids: Sequence[str], workers: Sequence[tuple[str, str, str]]) -> None:
    """airflow-init, then the servers and workers; until the DAGs are parsed (and unpaused), every
    server is healthy and every worker answers on the broker."""
    timings = stack.timings
    stack.run_init()
    t0 = time.monotonic()
    for name in SERVERS:
        stack.start_server(name)
    for service_name, hostname, queue in workers:
        stack.start_worker(service_name, hostname, queue)
    stack.wait_for_api(READY_TIMEOUT_S)
    timings["api_ready"] = time.monotonic() - t0
    for dag_id in dag_ids:
        stack.wait_for_dag(dag_id, READY_TIMEOUT_S)
        stack.client.set_paused(dag_id, False)
    timings["dags_parsed"] = time.monotonic() - t0
    stack.wait_for_healthy(("metadatabase", "scheduler", "triggerer", "dag_processor"), READY_TIMEOUT_S)
    stack.wait_for_workers([hostname for _, hostname, _ in workers])
    timings["all_ready"] = time.monotonic() - t0
