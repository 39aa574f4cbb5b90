"""Media storage backends and their configuration: what the S3 backend does beyond the media
tests (which run on both backends, tests/test_media.py), and the refusals at start."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest

from app import create_app
from app.config import TestConfig, config_as_dict
from app.storage import StorageUnavailable, brand_prefix, make_storage, media_key
from app.storage import s3 as s3_backend
from tests.media_files import image_bytes, upload

# -- the S3 backend, against a real S3-compatible server ---------------------------------------


class _Generated:
    """`size` bytes made on the fly: a source that is not a file, never seekable, and remembers
    the largest read it was asked for."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = hashlib.sha256(b"relais").digest() * 2048  # 64 KiB
        self.largest_read = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the whole file was asked for at once")
        self.largest_read = max(self.largest_read, size)
        out = bytearray()
        while len(out) < min(size, self.left):
            out += self.block[: min(size, self.left) - len(out)]
        data = bytes(out)
        self.left -= len(data)
        self.digest.update(data)
        return data


@pytest.fixture
def s3_storage(s3_server):
    return make_storage(s3_server.settings())


def test_large_uploads_stream_in_parts(s3_server, s3_storage) -> None:
    size = 2 * s3_backend.MULTIPART_CHUNKSIZE + 12345
    source = _Generated(size)
    key = media_key("agy_A", "brd_1", "med_big.mp4")
    assert s3_storage.save(key, source) == size
    # Read in parts of bounded size, never as one whole: memory stays flat for 1 GB videos.
    assert 0 < source.largest_read <= s3_backend.MULTIPART_CHUNKSIZE
    head = s3_server.client.head_object(Bucket=s3_server.bucket, Key=s3_storage.prefix + key)
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts

    read_back = hashlib.sha256()
    with s3_storage.open(key) as stream:
        while chunk := stream.read(1024 * 1024):
            read_back.update(chunk)
    assert read_back.hexdigest() == source.digest.hexdigest()


def test_reads_seek_with_ranged_requests(s3_storage) -> None:
    content = bytes(range(256)) * 40
    key = media_key("agy_A", "brd_1", "med_1.png")
    assert s3_storage.save(key, io.BytesIO(content)) == len(content)
    with s3_storage.open(key) as stream:
        assert stream.seekable()
        stream.seek(5000)
        assert stream.read(10) == content[5000:5010]
        stream.seek(-6, io.SEEK_END)
        assert stream.read() == content[-6:]
        stream.seek(0)
        assert stream.read() == content


def test_missing_objects(s3_storage) -> None:
    key = media_key("agy_A", "brd_1", "med_none.png")
    with pytest.raises(FileNotFoundError):
        s3_storage.open(key)
    assert s3_storage.exists(key) is False
    assert s3_storage.delete(key) is False
    assert s3_storage.local_path(key) is None


def test_delete_prefix_goes_through_every_page(s3_storage, monkeypatch) -> None:
    monkeypatch.setattr(s3_backend, "_DELETE_BATCH", 2)
    for n in range(5):
        s3_storage.save(media_key("agy_A", "brd_1", f"med_{n}.png"), io.BytesIO(b"x"))
    kept = media_key("agy_A", "brd_10", "med_0.png")  # a brand whose id starts the same
    s3_storage.save(kept, io.BytesIO(b"y"))
    assert s3_storage.delete_prefix(brand_prefix("agy_A", "brd_1")) == 5
    assert s3_storage.exists(kept)
    assert s3_storage.delete_prefix(brand_prefix("agy_A", "brd_1")) == 0


def test_a_store_that_does_not_answer_is_a_503_and_not_ready(
    app_config, s3_server, make_agency, monkeypatch
) -> None:
    broken = create_app(
        {**app_config, **s3_server.settings(), "S3_BUCKET": "no-such-bucket-for-relais"}
    )
    client = broken.test_client()
    monkeypatch.setattr(s3_backend.log, "error", lambda *args: None)  # expected, not noise

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["media_storage"] == "unreachable"

    owner = make_agency()
    response = upload(client, owner, owner.brands[0], image_bytes(), "a.png")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("storage-unavailable")
    assert "no-such-bucket" not in body["detail"]  # bucket names are for the logs
    listed = client.get(f"/v1/brands/{owner.brands[0]}/media", headers=owner.headers)
    assert listed.get_json()["items"] == []


def test_readyz_reports_the_media_storage(client) -> None:
    assert client.get("/readyz").get_json()["checks"]["media_storage"] == "ok"


def test_the_store_failing_mid_read_is_not_a_short_file(s3_storage) -> None:
    key = media_key("agy_A", "brd_1", "med_cut.png")
    s3_storage.save(key, io.BytesIO(b"z" * 1000))
    stream = s3_storage.open(key)
    stream.raw._body = io.BytesIO(b"z" * 10)  # the connection drops after 10 bytes
    with pytest.raises(StorageUnavailable):
        stream.read()


# -- configuration: refused at start ---------------------------------------------------------


# What production needs besides the media store (app/startup.py refuses it otherwise), so that
# each case below is refused, or not, for its storage settings alone.
PRODUCTION = {
    "ENV": "production",
    "SECRET_KEY": "x7Qm2Lp9Rz4Tv8Wb1Nc6Kd3Hf5Jg0Sa-storage-tests",
    "API_BASE_URL": "https://api.example.com",
    "SMTP_URL": "smtp://mail.example.com:587",
    "MAIL_FROM": "Relais <relais@example.com>",
}


def _settings(**overrides: Any) -> dict[str, Any]:
    settings = config_as_dict(TestConfig)
    settings.update(overrides)
    return settings


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"MEDIA_STORAGE": "nfs"}, "MEDIA_STORAGE='nfs'"),
        ({"MEDIA_STORAGE": "s3", "S3_BUCKET": ""}, "S3_BUCKET"),
        ({"MEDIA_STORAGE": "s3", "S3_BUCKET": "b", "S3_ADDRESSING_STYLE": "dns"}, "ADDRESSING"),
        ({**PRODUCTION, "MEDIA_ROOT": ""}, "MEDIA_ROOT"),
    ],
    ids=["unknown-backend", "s3-without-bucket", "s3-odd-addressing", "production-local-no-root"],
)
def test_unworkable_storage_settings_refuse_to_start(overrides: dict, needle: str) -> None:
    with pytest.raises(RuntimeError, match=needle.replace("[", r"\[")):
        create_app(_settings(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {"MEDIA_STORAGE": "local", "MEDIA_ROOT": "/srv/relais/media"},
        {"MEDIA_STORAGE": "s3", "S3_BUCKET": "relais-media", "MEDIA_ROOT": ""},
    ],
    ids=["local-with-root", "s3"],
)
def test_production_starts_with_a_named_media_store(overrides: dict) -> None:
    app = create_app(
        _settings(
            **PRODUCTION,
            DATABASE_URL="postgresql+psycopg://relais@db/relais",
            **overrides,
        )
    )
    assert app.config["MEDIA_STORAGE"] == overrides["MEDIA_STORAGE"]


def test_development_keeps_media_under_the_working_directory() -> None:
    from app.config import VAR_DIR
    from app.storage import LocalStorage

    storage = make_storage(_settings(MEDIA_STORAGE="local", MEDIA_ROOT=""))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (VAR_DIR / "media").resolve()
    assert "site-packages" not in str(storage.root)
