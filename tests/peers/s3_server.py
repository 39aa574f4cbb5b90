"""A real S3-compatible server for the suite: moto in server mode, on a free port of 127.0.0.1.

The app talks to it over HTTP with boto3 exactly as it would to AWS or MinIO (moto's in-process
mocking is not used), so signing, multipart uploads, ranged GETs and error codes all go through
the wire.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

ACCESS_KEY_ID = "relais-test-key"
SECRET_ACCESS_KEY = "relais-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str

    def settings(self, prefix: str | None = None) -> dict[str, Any]:
        """App settings for a storage under a prefix of its own (tests never share one)."""
        return {
            "MEDIA_STORAGE": "s3",
            "S3_BUCKET": self.bucket,
            "S3_PREFIX": prefix or f"test-{uuid.uuid4().hex[:12]}",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    @cached_property
    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def object_names(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(endpoint_url=f"http://{host}:{port}", bucket="relais-media-test")
        s3.client.create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()
