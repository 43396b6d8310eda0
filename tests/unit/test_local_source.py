"""Unit tests for autopo_pipelines.sources.local.LocalFolderSource."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from autopo_pipelines.sources import is_candidate_name
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
