"""Airflow as a user runs it, for the system tests: a throwaway stack per session.

The stack itself is ``autopo_local.throwaway_stack`` (``make bench``'s scheduler stage starts it
too); the system tests import it from here, with ``report`` for writing past pytest's capture.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from autopo_local.stack import drop_metadata_db
from autopo_local.throwaway_stack import ADMIN_USER, METADATA_DB, AirflowStack, start_airflow_stack

__all__ = [
    "ADMIN_USER",
    "METADATA_DB",
    "AirflowStack",
    "drop_metadata_db",
    "report",
    "start_airflow_stack",
]


def report(config: Any, text: str) -> None:
    """Write to the terminal past pytest's output capture (timings; logs on failure), also under ``-q``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        sys.stderr.write(text + "\n")
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(text)
