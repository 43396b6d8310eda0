"""The data root as Airflow reaches it: a local folder, or an object store through its connection.

``AUTOPO_DATA_DIR`` is a folder (the embedded default, ``./data``) or an object-store URL such as
``gs://bucket/prefix`` (``s3://…`` where the amazon provider is installed). A URL is opened as
Airflow's ``ObjectStoragePath`` with the connection named by ``AUTOPO_DATA_CONN_ID`` (default: the
provider's own, ``google_cloud_default`` for ``gs://``), so every worker, the DAG processor and the
triggerer reach the same day state with the credentials Airflow already holds.
"""

from __future__ import annotations

import os
from typing import cast

from upath import UPath

from autopo_pipelines.layout import DATA_DIR_ENV, DataLayout, data_root
from autopo_pipelines.storage import is_url

DATA_CONN_ENV = "AUTOPO_DATA_CONN_ID"
# The provider's default connection for each scheme the data root may use.
DEFAULT_CONN_IDS = {"gs": "google_cloud_default", "gcs": "google_cloud_default", "s3": "aws_default"}


def data_layout() -> DataLayout:
    """The data root named by the environment, opened with its connection when it is a URL."""
    configured = os.environ.get(DATA_DIR_ENV, "data")
    if not is_url(configured):
        return DataLayout(data_root())
    from airflow.sdk import ObjectStoragePath

    scheme = configured.split("://", 1)[0]
    conn_id = os.environ.get(DATA_CONN_ENV) or DEFAULT_CONN_IDS.get(scheme)
    root = ObjectStoragePath(configured.rstrip("/"), conn_id=conn_id)
    # The store's filesystem from the connection, now: a missing or wrong connection fails here naming
    # it, instead of some operations quietly falling back to the machine's default credentials.
    root.fs  # noqa: B018
    # An ObjectStoragePath is a UPath (registered as one; it delegates to the UPath it wraps), which
    # is what the package's storage functions take.
    return DataLayout(cast(UPath, root))
