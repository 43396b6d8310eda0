"""A Google Cloud Storage bucket folder as a source.

Credentials come only from the Airflow connection (``gcp_conn_id``) through the
Google provider's ``GCSHook``; nothing here reads or logs a secret. The files
are the blobs directly under the prefix (not those in deeper "folders"); their
checksum is the one the store keeps (md5, or crc32c for composite objects that
have no md5), so ``checksum`` needs no download and ``fetch`` returns the same
value for the same content.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from autopo_pipelines.sources import FetchedFile, SourceError, SourceFile, is_candidate_name
from autopo_pipelines.sources.download import ChecksumMismatchError, HashingWriter, check_download, write_copy

__all__ = ["ChecksumMismatchError", "GcsSource", "blob_checksum", "normalise_prefix"]

if TYPE_CHECKING:
    from google.cloud.storage import Blob, Bucket

SCHEME = "gs://"


def normalise_prefix(prefix: str) -> str:
    """A folder-like prefix: no leading "/", one trailing "/" unless it is the bucket's top."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def blob_checksum(blob: Blob) -> str:
    """The checksum the store keeps for the blob: "md5:<hex>", else "crc32c:<hex>"."""
    if blob.md5_hash:
        return "md5:" + base64.b64decode(blob.md5_hash).hex()
    if blob.crc32c:
        return "crc32c:" + base64.b64decode(blob.crc32c).hex()
    raise ValueError(f"{SCHEME}{blob.bucket.name}/{blob.name}: the store gives no md5 or crc32c checksum")


def _hasher_for(checksum: str) -> Any:
    algorithm = checksum.partition(":")[0]
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    import google_crc32c  # a dependency of google-cloud-storage

    return google_crc32c.Checksum()  # type: ignore[no-untyped-call]  # google_crc32c leaves Checksum unannotated


class GcsSource:
    def __init__(self, bucket: str, prefix: str = "", gcp_conn_id: str = "google_cloud_default") -> None:
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self.gcp_conn_id = gcp_conn_id
        self._bucket: Bucket | None = None

    def describe(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"

    def _client_bucket(self) -> Bucket:
        if self._bucket is None:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            client = GCSHook(gcp_conn_id=self.gcp_conn_id).get_conn()
            self._bucket = client.bucket(self.bucket)
        return self._bucket

    def _blob_name(self, file: SourceFile) -> str:
        head = f"{SCHEME}{self.bucket}/"
        if not file.location.startswith(head):
            raise ValueError(f"{file.name}: {file.location!r} is not in {head}")
        return file.location[len(head) :]

    def _current_blob(self, file: SourceFile) -> Blob:
        """The blob's metadata now; FileNotFoundError when it is gone since the listing."""
        blob = self._client_bucket().get_blob(self._blob_name(file))
        if blob is None:
            raise FileNotFoundError(f"{file.location}: no longer at the source")
        return blob

    def list_files(self) -> list[SourceFile]:
        from google.api_core.exceptions import Forbidden, NotFound

        bucket = self._client_bucket()
        try:
            # delimiter="/": only the blobs directly under the prefix, not those in deeper "folders".
            blobs = list(bucket.client.list_blobs(bucket, prefix=self.prefix, delimiter="/"))
        except NotFound as exc:
            raise SourceError(f"bucket {self.bucket!r} does not exist; check source.bucket in the config") from exc
        except Forbidden as exc:
            raise SourceError(
                f"connection {self.gcp_conn_id!r} may not list bucket {self.bucket!r}: give its service account "
                "read access to the bucket (roles/storage.objectViewer)"
            ) from exc
        files = []
        for blob in blobs:
            name = blob.name[len(self.prefix) :]
            if not name or "/" in name or not is_candidate_name(name):
                continue  # the folder's placeholder, a deeper blob, a lock or hidden file
            modified = blob.updated or blob.time_created
            files.append(
                SourceFile(
                    name=name,
                    location=f"{SCHEME}{self.bucket}/{blob.name}",
                    size_bytes=int(blob.size or 0),
                    modified=modified.timestamp() if modified is not None else 0.0,
                )
            )
        return sorted(files, key=lambda f: f.name)

    def checksum(self, file: SourceFile) -> str:
        return blob_checksum(self._current_blob(file))

    def fetch(self, file: SourceFile, directory: Path) -> FetchedFile:
        """Stream the blob to a temporary file, hashing as it is written, check the hash
        against the store's, and only then rename it into place."""
        from google.api_core.exceptions import NotFound

        blob = self._current_blob(file)
        expected = blob_checksum(blob)
        hasher = _hasher_for(expected)

        def download(out: BinaryIO) -> None:
            try:
                # The blob's metadata pins its generation: the bytes are the ones `expected`
                # describes, or a NotFound if that generation has been replaced or deleted.
                # raw_download: the stored bytes, which the stored checksum describes; the
                # check is ours (checksum=None), so a mismatch names the file.
                blob.download_to_file(HashingWriter(out, hasher), raw_download=True, checksum=None)
            except NotFound as exc:
                raise FileNotFoundError(f"{file.location}: no longer at the source") from exc
            actual = f"{expected.partition(':')[0]}:{hasher.digest().hex()}"
            check_download(file.name, file.location, actual, expected, whose="the store's", problem="corrupt")

        return FetchedFile(path=write_copy(directory, file.name, download), checksum=expected)
