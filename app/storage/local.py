"""Local-disk storage under MEDIA_ROOT (the embedded default, and what tests use with a temp
dir). Every process that serves or publishes media must see the same folder: one machine, or a
volume all of them mount; across machines, use the S3 backend."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from app.storage.base import (
    InvalidKey,
    Storage,
    StorageUnavailable,
    StoredFile,
    check_key,
    key_order,
)

_CHUNK = 1024 * 1024
UPLOAD_PREFIX = "_upload-"


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        check_key(key, prefix=prefix)
        path = (self.root / key).resolve()
        # Belt and braces after check_key: a symlink planted under the root must not lead out.
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the media root: {key!r}")
        return path

    def save(self, key: str, source: BinaryIO) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        # Write beside the target, then rename: a reader never sees half a file. The name is a
        # valid key no media row has, so the orphan sweep removes what a killed upload left.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=UPLOAD_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return written

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix, prefix=True)
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

    def list_files(self, *, start_after: str = "", limit: int) -> list[StoredFile]:
        files = []
        for key in islice(self._keys_after(key_order(start_after) if start_after else ()), limit):
            try:
                stat = (self.root / key).stat()
            except FileNotFoundError:  # deleted meanwhile
                continue
            files.append(StoredFile(key, datetime.fromtimestamp(stat.st_mtime, UTC)))
        return files

    def _keys_after(self, start: tuple[str, ...]) -> Iterator[str]:
        """Every key in segment order after `start`, skipping whole folders before it."""

        def names(path: Path, *, folders: bool) -> list[str]:
            try:
                entries = list(os.scandir(path))
            except (FileNotFoundError, NotADirectoryError):
                return []
            return sorted(e.name for e in entries if e.is_dir() == folders)

        for agency in names(self.root, folders=True):
            if start and agency < start[0]:
                continue
            in_start_agency = bool(start) and agency == start[0]
            for brand in names(self.root / agency, folders=True):
                if in_start_agency and len(start) > 1 and brand < start[1]:
                    continue
                in_start_brand = in_start_agency and len(start) > 1 and brand == start[1]
                for name in names(self.root / agency / brand, folders=False):
                    if in_start_brand and len(start) > 2 and name <= start[2]:
                        continue
                    key = f"{agency}/{brand}/{name}"
                    try:
                        check_key(key)
                    except InvalidKey:
                        continue
                    yield key

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is not writable")

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))
