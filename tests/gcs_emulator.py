"""A real GCS emulator (gcp-storage-emulator, the JSON API) on loopback, and the Airflow connection
that reaches it with anonymous credentials, as the Google provider's hooks read it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gcp_storage_emulator.server import Server, create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from autopo_local.embedded_pg import free_port

PROJECT = "autopo-test"


@contextmanager
def gcs_emulator(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[storage.Client, Server]]:
    """The emulator, ``STORAGE_EMULATOR_HOST`` pointing at it, and ``google_cloud_default`` defined
    as an anonymous connection (the hook otherwise looks for real credentials)."""
    port = free_port()
    # In memory: on disk the emulator cannot hold both a "folder" placeholder blob
    # ("stores/po/") and the blobs under it (a file and a directory of the same name).
    server = create_server("127.0.0.1", port, in_memory=True, data_dir=str(data_dir))
    server.start()
    _forget_filesystems()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        connection = {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": PROJECT}}
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps(connection))
        yield storage.Client(project=PROJECT, credentials=AnonymousCredentials()), server
    finally:
        server.stop()
        _forget_filesystems()


def _forget_filesystems() -> None:
    """Airflow keeps a connection's filesystem for the life of the process (``attach``'s store cache),
    and fsspec an instance per set of arguments: built for one emulator (its port is read from the
    environment when the filesystem is made), they must not be used with the next one."""
    import gcsfs
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    gcsfs.GCSFileSystem.clear_instance_cache()
