"""S3-compatible object storage (AWS S3, MinIO, Ceph, Cloudflare R2, ...): media that every API
process and worker reaches, whatever machine it runs on.

Objects are named `S3_PREFIX` + the storage key. Uploads stream from the (spooled) upload file in
parts (multipart above `MULTIPART_THRESHOLD`), so a 1 GB video never sits in memory, and an
object only appears once its last part is in: readers never see half a file, as with the local
rename. Reads stream too, and seek with ranged GETs, so the API answers byte ranges without
downloading what comes before.

Give the bucket a lifecycle rule that aborts incomplete multipart uploads after a day: a process
killed mid-upload leaves parts behind that nothing else cleans up.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import InvalidKey, Storage, StorageUnavailable, StoredFile, check_key

# Parts of 8 MiB, four sent at a time and at most four waiting in memory: about 40 MiB of one
# upload in memory (the parts, plus the one being read), whatever the file's size.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=MULTIPART_THRESHOLD,
    multipart_chunksize=MULTIPART_CHUNKSIZE,
    max_concurrency=4,
)
# s3transfer's own setting (default 10), which boto3's constructor does not take.
_TRANSFER.max_in_memory_upload_chunks = 4
_DELETE_BATCH = 1000  # the most one DeleteObjects call takes

log = logging.getLogger(__name__)


def _unavailable(what: str, error: object) -> StorageUnavailable:
    log.error("media storage: %s: %s", what, error)
    return StorageUnavailable(f"{what}: {error}")


def _not_found(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("NoSuchKey", "404", "NotFound") or status == 404


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "auto",
    ) -> None:
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        # A session of our own: boto3's default session is not safe to share between threads.
        session = boto3.session.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region or None,
        )
        self.client = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=BotoConfig(
                s3={"addressing_style": addressing_style},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def _name(self, key: str, *, prefix: bool = False) -> str:
        check_key(key, prefix=prefix)
        return self.prefix + key + ("/" if prefix else "")

    def save(self, key: str, source: BinaryIO) -> int:
        name = self._name(key)
        counted = _CountingReader(source)
        try:
            self.client.upload_fileobj(counted, self.bucket, name, Config=_TRANSFER)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"could not store {key}", exc) from exc
        return counted.count

    def open(self, key: str) -> BinaryIO:
        reader = _ObjectReader(self.client, self.bucket, self._name(key))
        return io.BufferedReader(reader, buffer_size=256 * 1024)  # type: ignore[return-value]

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise _unavailable(f"could not look up {key}", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(f"could not look up {key}", exc) from exc
        return True

    def delete(self, key: str) -> bool:
        # S3 answers a DELETE of a missing object with success: ask first, to report it.
        if not self.exists(key):
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"could not delete {key}", exc) from exc
        return True

    def delete_prefix(self, prefix: str) -> int:
        name = self._name(prefix, prefix=True)
        count = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=name, PaginationConfig={"PageSize": _DELETE_BATCH}
            )
            for page in pages:
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not objects:
                    continue
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise _unavailable(f"could not delete {first.get('Key')}", first.get("Message"))
                count += len(objects)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"could not delete the files under {prefix}", exc) from exc
        return count

    def list_files(self, *, start_after: str = "", limit: int) -> list[StoredFile]:
        options: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        if start_after:
            options["StartAfter"] = self.prefix + start_after
        files = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                **options, PaginationConfig={"MaxItems": limit, "PageSize": min(limit, 1000)}
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    try:
                        check_key(key)
                    except InvalidKey:
                        continue
                    files.append(StoredFile(key, item["LastModified"].astimezone(UTC)))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"could not list the files after {start_after!r}", exc) from exc
        return files

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(f"bucket {self.bucket!r} does not answer", exc) from exc


class _CountingReader:
    """Counts the bytes boto3 reads. Deliberately not seekable: boto3 then reads each part
    once, into a buffer it can retry from, so the count is exact."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        self.count += len(chunk)
        return chunk


class _ObjectReader(io.RawIOBase):
    """One object, read as a stream; a seek starts a new ranged GET at the new position
    (werkzeug seeks once to answer a Range request)."""

    def __init__(self, client: Any, bucket: str, name: str) -> None:
        self._client, self._bucket, self._name = client, bucket, name
        self._position = 0
        self._body: Any = None
        answer = self._get()  # now, so a missing object is a FileNotFoundError at open
        self.size = int(answer["ContentLength"])

    def _get(self, start: int = 0) -> dict[str, Any]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._name, **extra)
        except ClientError as exc:
            if _not_found(exc):
                raise FileNotFoundError(self._name) from None
            raise _unavailable(f"could not read {self._name}", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(f"could not read {self._name}", exc) from exc
        self._body = answer["Body"]
        return answer

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._close_body()
            self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self.size:
            return 0
        if self._body is None:
            self._get(self._position)
        data = self._body.read(len(buffer))
        if not data:
            # The store closed the stream early: fail rather than serve a truncated file.
            raise _unavailable(f"could not read {self._name}", f"ended at byte {self._position}")
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()
