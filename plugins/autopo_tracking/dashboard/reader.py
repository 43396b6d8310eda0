"""Read connections to the warehouse for the dashboard: made by the tracking hook (the Airflow
connection ``autopo_db``, its extras and the tracking statement timeout) and kept between requests,
since opening one costs more than most of the dashboard's queries."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from autopo_tracking.hooks.tracking import TrackingHook

KEEP_IDLE = 4


class WarehouseReader:
    def __init__(self, conn_id: str | None = None) -> None:
        self.conn_id = conn_id
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()

    def _connect(self) -> psycopg.Connection[Any]:
        hook = TrackingHook(tracking_conn_id=self.conn_id) if self.conn_id else TrackingHook()
        conn = hook.get_conn()
        if not isinstance(conn, psycopg.Connection):
            conn.close()
            raise TypeError("the dashboard reads with psycopg 3, but PostgresHook made a psycopg2 connection")
        conn.autocommit = True
        conn.execute("SET default_transaction_read_only = on")
        # The API's times are UTC whatever the server's or the connection's own TimeZone says.
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def _take(self) -> psycopg.Connection[Any]:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            if conn.closed or conn.broken:
                continue
            # The server may have closed it since (a restart, an idle timeout): a round trip on loopback
            # costs a fraction of a millisecond, a request answered 503 costs a person a reload.
            try:
                conn.execute("SELECT 1")
            except psycopg.Error:
                conn.close()
                continue
            return conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._take()
        try:
            yield conn
        finally:
            if conn.closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.close()
            elif self._idle.qsize() < KEEP_IDLE:
                self._idle.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            conn.close()
