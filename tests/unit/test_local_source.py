"""Unit tests for autopo_pipelines.sources.local.LocalFolderSource."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from autopo_pipelines.errors import InputFileError
from autopo_pipelines.sources import FetchedFile, SourceFile, is_candidate_name
from autopo_pipelines.sources.local import LocalFolderSource, local_copy_name, sha256_of


def make_inbox(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "STORE-012_stock_20241204.xlsx").write_bytes(b"store 12 content")
    (folder / "Toko 7 stock health 2024-12-04.xlsx").write_bytes(b"toko 7")
    (folder / "~$STORE-012_stock_20241204.xlsx").write_bytes(b"excel lock file")
    (folder / "~$lock.xlsx").write_bytes(b"lock")
    (folder / ".hidden.xlsx").write_bytes(b"hidden")
    (folder / ".DS_Store").write_bytes(b"mac")
    (folder / "subfolder").mkdir()
    (folder / "subfolder" / "nested_stock_20241204.xlsx").write_bytes(b"nested")


def test_list_files_lists_uploads_only(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_inbox(inbox)
    files = LocalFolderSource(inbox).list_files()
    assert [f.name for f in files] == ["STORE-012_stock_20241204.xlsx", "Toko 7 stock health 2024-12-04.xlsx"]
    first = files[0]
    assert first.location == str(inbox / "STORE-012_stock_20241204.xlsx")
    assert first.size_bytes == len(b"store 12 content")
    assert first.modified == (inbox / first.name).stat().st_mtime


def test_checksum_is_stable_and_follows_content(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "S1_stock_20241204.xlsx"
    path.write_bytes(b"version 1")
    source = LocalFolderSource(inbox)
    downloads = tmp_path / "downloads"
    first = source.fetch(source.list_files()[0], downloads).checksum
    assert source.fetch(source.list_files()[0], downloads).checksum == first
    # Same content, new modification time: same checksum.
    os.utime(path, (1_700_000_000, 1_700_000_000))
    assert source.fetch(source.list_files()[0], downloads).checksum == first
    path.write_bytes(b"version 2")
    second = source.fetch(source.list_files()[0], downloads)
    assert second.checksum != first
    assert second.checksum == "sha256:" + hashlib.sha256(b"version 2").hexdigest()
    assert second.path.read_bytes() == b"version 2"


def test_sha256_of_a_file_larger_than_one_read_chunk(tmp_path: Path) -> None:
    content = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "big.xlsx"
    path.write_bytes(content)
    assert sha256_of(path) == "sha256:" + hashlib.sha256(content).hexdigest()


def test_missing_folder_lists_nothing(tmp_path: Path) -> None:
    source = LocalFolderSource(tmp_path / "does-not-exist")
    assert source.list_files() == []


def test_a_file_instead_of_a_folder_lists_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    path.write_text("not a folder", encoding="utf-8")
    assert LocalFolderSource(path).list_files() == []


def test_fetch_copies_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_inbox(inbox)
    source = LocalFolderSource(inbox)
    file = source.list_files()[1]
    fetched = source.fetch(file, tmp_path / "downloads")
    assert fetched.path.parent == tmp_path / "downloads"
    assert fetched.path.name.startswith("Toko_7_stock_health_2024-12-04.") and fetched.path.suffix == ".xlsx"
    assert fetched.path.read_bytes() == b"toko 7"
    assert fetched.checksum == "sha256:" + hashlib.sha256(b"toko 7").hexdigest()
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == [fetched.path.name]
    assert (inbox / file.name).exists(), "the source file stays where the store put it"


def test_is_candidate_name() -> None:
    assert is_candidate_name("STORE-012_stock_20241204.xlsx")
    assert is_candidate_name("Toko 7 stock health 2024-12-04.xlsx")
    assert not is_candidate_name("~$lock.xlsx")
    assert not is_candidate_name(".hidden.xlsx")


def test_names_that_look_alike_get_their_own_copies(tmp_path: Path) -> None:
    """'A B.xlsx' and 'A_B.xlsx' must not share a local copy: mapped tasks fetch them at the same time."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "A B.xlsx").write_bytes(b"one")
    (inbox / "A_B.xlsx").write_bytes(b"two")
    source = LocalFolderSource(inbox)
    copies = [source.fetch(f, tmp_path / "downloads") for f in source.list_files()]
    assert len({c.path for c in copies}) == 2
    assert sorted(c.path.read_bytes() for c in copies) == [b"one", b"two"]
    assert local_copy_name("A_B.xlsx") == "A_B.xlsx"
    assert source.checksum(source.list_files()[0]) == copies[0].checksum


# --------------------------------------------------------------------------- links and special files


def fetch_in_thread(
    source: LocalFolderSource, file: SourceFile, directory: Path, *, timeout: float = 10
) -> BaseException:
    """What ``source.fetch`` raised, within ``timeout``; a fetch that blocks (on a FIFO) fails the test, unblocked."""
    outcome: list[BaseException | FetchedFile] = []

    def target() -> None:
        try:
            outcome.append(source.fetch(file, directory))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        # Unblock a read of a FIFO so the thread ends, then fail.
        with contextlib.suppress(OSError):
            fd = os.open(file.location, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        thread.join(5)
        pytest.fail(f"fetch of {file.name} blocked for {timeout}s: it opened a special file")
    (result,) = outcome
    assert isinstance(result, BaseException), f"{file.name} was read: {result}"
    return result


def listed(source: LocalFolderSource, name: str) -> SourceFile:
    by_name = {f.name: f for f in source.list_files()}
    assert name in by_name, f"{name} is not listed: tracking would not show it ({sorted(by_name)})"
    return by_name[name]


def assert_refused(error: BaseException, name: str, what: str) -> None:
    assert isinstance(error, InputFileError), repr(error)
    assert not isinstance(error, FileNotFoundError), "the day would call it deleted since the listing"
    assert error.file == name
    assert what in error.message and "not read" in error.message


def test_a_link_to_a_file_outside_the_inbox_is_listed_but_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "id_rsa"
    secret.parent.mkdir()
    secret.write_bytes(b"PRIVATE KEY")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    link = inbox / "S1_stock_20241204.xlsx"
    link.symlink_to(secret)
    source = LocalFolderSource(inbox)

    file = listed(source, link.name)
    assert file.size_bytes == os.lstat(link).st_size  # the link's own, not its target's
    downloads = tmp_path / "downloads"
    assert_refused(fetch_in_thread(source, file, downloads), link.name, "symbolic link")
    assert not downloads.exists() or list(downloads.iterdir()) == []
    # Nor is it read to compare its content with the other files'.
    with pytest.raises(FileNotFoundError, match="symbolic link"):
        source.checksum(file)


def test_a_link_to_a_file_inside_the_inbox_is_not_read_and_the_file_itself_is(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    real = inbox / "S1_stock_20241204.xlsx"
    real.write_bytes(b"store 1")
    link = inbox / "S2_stock_20241204.xlsx"
    link.symlink_to(real.name)  # relative, as `ln -s` makes it
    source = LocalFolderSource(inbox)

    assert [f.name for f in source.list_files()] == [real.name, link.name]
    assert_refused(
        fetch_in_thread(source, listed(source, link.name), tmp_path / "downloads"), link.name, "symbolic link"
    )
    fetched = source.fetch(listed(source, real.name), tmp_path / "downloads")
    assert fetched.path.read_bytes() == b"store 1"
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == [fetched.path.name]


def test_a_fifo_is_listed_and_refused_without_blocking(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fifo = inbox / "S1_stock_20241204.xlsx"
    os.mkfifo(fifo)
    source = LocalFolderSource(inbox)

    file = listed(source, fifo.name)
    assert_refused(fetch_in_thread(source, file, tmp_path / "downloads", timeout=5), fifo.name, "special file")
    # Through a link too: refused as a link, the FIFO never opened.
    link = inbox / "S2_stock_20241204.xlsx"
    link.symlink_to(fifo)
    assert_refused(
        fetch_in_thread(source, listed(source, link.name), tmp_path / "downloads", timeout=5),
        link.name,
        "symbolic link",
    )


def test_a_file_replaced_by_a_link_after_the_listing_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"PRIVATE")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "S1_stock_20241204.xlsx"
    path.write_bytes(b"store 1")
    source = LocalFolderSource(inbox)
    file = listed(source, path.name)

    path.unlink()
    path.symlink_to(secret)
    assert_refused(fetch_in_thread(source, file, tmp_path / "downloads"), path.name, "symbolic link")
    with pytest.raises(FileNotFoundError, match="symbolic link"):
        source.checksum(file)
    # And replaced by a FIFO: refused, without blocking.
    path.unlink()
    os.mkfifo(path)
    assert_refused(fetch_in_thread(source, file, tmp_path / "downloads", timeout=5), path.name, "special file")


def test_a_day_lists_a_link_and_fails_only_its_transform(tmp_path: Path) -> None:
    """Tracking shows the link (it is in the day's listing); its transform fails with the reason, recorded."""
    from autopo_pipelines.config import load_config_file
    from autopo_pipelines.day import Day
    from autopo_pipelines.day.file_run import run_file
    from autopo_pipelines.day.listing import list_day_batches
    from autopo_pipelines.layout import DataLayout

    date = dt.date(2024, 12, 4)
    config = load_config_file(Path(__file__).resolve().parents[2] / "dags" / "configs" / "stock_health.yaml")
    config = config.model_copy(update={"settings": {**config.settings, "on_order_table": None}})
    layout = DataLayout(tmp_path / "data")
    (layout.reference()).mkdir(parents=True)
    (layout.reference() / "suppliers.csv").write_text(
        "sku,supplier_id,supplier_name,lead_time_days,moq,pack_size\n", encoding="utf-8"
    )
    inbox = layout.inbox(config.name)
    inbox.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"PRIVATE")
    link = inbox / "S2_stock_20241204.xlsx"
    link.symlink_to(secret)
    # A file of the link's own size: the listing compares their contents (checksums) before any transform.
    (inbox / "S1_stock_20241204.xlsx").write_bytes(b"x" * os.lstat(link).st_size)

    day = Day(config, layout, date, "run-1")
    batches = list_day_batches(day)
    tasks = {t.name: t for batch in batches for t in batch}
    assert sorted(tasks) == ["S1_stock_20241204.xlsx", link.name]
    with pytest.raises(InputFileError, match="symbolic link") as raised:
        run_file(day, tasks[link.name])
    assert raised.value.file == link.name
    # The day's record of the file's outcome says so too.
    records = [
        json.loads(p.read_text(encoding="utf-8")) for p in layout.intermediate(config.name, date).rglob("*.json")
    ]
    (record,) = [r for r in records if isinstance(r, dict) and r.get("file_name") == link.name]
    assert record["status"] == "failed" and "symbolic link" in record["error"]
