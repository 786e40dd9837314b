"""The boto3 side of :class:`repotool.push.store.ObjectStore`: a bucket under a prefix.

Credentials and region come from the standard AWS places (environment,
``~/.aws/config`` and ``credentials``, ``AWS_PROFILE``); the endpoint from
``--endpoint-url``, else ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, else AWS.
botocore's errors are turned into :class:`repotool.errors.PushError` here, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repotool.errors import PushAccessError, PushError, PushTransportError
from repotool.push.store import StoredObject

#: files above this go up in parts (S3 refuses a single PUT above 5 GiB)
MULTIPART_THRESHOLD = 64 * 1024 * 1024
_ACCESS_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "403",
}


def parse_destination(url: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` → (bucket, prefix without slashes at either end)."""
    hint = "name the destination as s3://BUCKET or s3://BUCKET/PREFIX, e.g. s3://repo/perfsonar"
    if not url.startswith("s3://"):
        raise PushAccessError(f"not an s3:// destination: {url!r}", where=url, hint=hint)
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if not bucket or any(p in ("", ".", "..") for p in parts):
        raise PushAccessError(f"not a usable bucket and prefix: {url!r}", where=url, hint=hint)
    return bucket, prefix


class S3Store:
    """One bucket under one prefix through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        #: HTTP requests sent (retries and multipart parts included)
        self.requests = 0
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, **_: Any) -> None:
        self.requests += 1

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def get(self, key: str, *, max_bytes: int) -> bytes | None:
        with self._errors(key, missing_ok=True) as missing:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key(key))
            body = reply["Body"]
            try:
                data: bytes = body.read(max_bytes + 1)
            finally:
                body.close()
            return data
        assert missing()
        return None

    def head(self, key: str) -> StoredObject | None:
        with self._errors(key, missing_ok=True) as missing:
            reply = self.client.head_object(Bucket=self.bucket, Key=self.key(key))
            meta = {k.lower(): v for k, v in (reply.get("Metadata") or {}).items()}
            return StoredObject(int(reply["ContentLength"]), meta.get("sha256"))
        assert missing()
        return None

    def put(
        self,
        key: str,
        source: Path | bytes,
        *,
        sha256: str,
        content_type: str,
        cache_control: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}, "ContentType": content_type}
        if cache_control:
            extra["CacheControl"] = cache_control
        with self._errors(key):
            if isinstance(source, bytes):
                self.client.put_object(Bucket=self.bucket, Key=self.key(key), Body=source, **extra)
            elif source.stat().st_size < MULTIPART_THRESHOLD:
                # one PUT; the transfer manager below costs more than the request itself
                with source.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self.key(key), Body=body, **extra
                    )
            else:
                from boto3.s3.transfer import TransferConfig

                self.client.upload_file(
                    str(source),
                    self.bucket,
                    self.key(key),
                    ExtraArgs=extra,
                    Config=TransferConfig(
                        multipart_threshold=MULTIPART_THRESHOLD,
                        multipart_chunksize=MULTIPART_THRESHOLD,
                        use_threads=False,
                    ),
                )

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(key))

    @contextmanager
    def _errors(self, key: str, *, missing_ok: bool = False) -> Iterator[Callable[[], bool]]:
        """botocore's errors → PushError naming the object; a missing object is
        swallowed when ``missing_ok`` (the callable yielded then says so)."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"{self.where}/{key}" if key else self.where
        missing = False
        try:
            yield lambda: missing
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise PushAccessError(
                f"no usable credentials for the object store: {e}",
                where=where,
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a "
                "profile in ~/.aws/credentials",
            ) from e
        except EndpointConnectionError as e:
            raise PushTransportError(
                f"cannot reach the object store: {e}",
                where=where,
                hint="check --endpoint-url (or AWS_ENDPOINT_URL) and that the service is up; "
                "run the push again: it resumes",
            ) from e
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            if missing_ok and code in ("NoSuchKey", "404", "NotFound"):
                missing = True
                return
            raise _client_error(code, str(error.get("Message", "")), where) from e
        except S3UploadFailedError as e:
            raise PushTransportError(
                f"the upload failed: {e}", where=where, hint="run the push again: it resumes"
            ) from e
        except BotoCoreError as e:
            raise PushTransportError(
                f"the object store request failed: {e}",
                where=where,
                hint="run the push again: it resumes",
            ) from e


def _client_error(code: str, message: str, where: str) -> PushError:
    detail = f"{code}: {message}" if message else code
    if code == "NoSuchBucket":
        return PushAccessError(
            f"the bucket does not exist ({detail})",
            where=where,
            hint="create the bucket first (it must allow anonymous read for hosts to install "
            "from it), or fix the bucket name",
        )
    if code in _ACCESS_CODES:
        return PushAccessError(
            f"the object store refused access ({detail})",
            where=where,
            hint="check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they may "
            "read, write and delete under this prefix",
        )
    return PushTransportError(
        f"the object store failed the request ({detail})",
        where=where,
        hint="run the push again: it resumes where it stopped",
    )


def open_s3_store(url: str, *, endpoint_url: str | None = None) -> S3Store:
    """The store for ``s3://BUCKET[/PREFIX]`` with credentials from the AWS environment."""
    import boto3
    from botocore.config import Config as BotoConfig

    bucket, prefix = parse_destination(url)
    custom = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    config = BotoConfig(
        connect_timeout=10,
        read_timeout=120,
        retries={"max_attempts": 4, "mode": "standard"},
        # S3-compatible services (SeaweedFS, MinIO, Ceph) name buckets in the path
        s3={"addressing_style": "path" if custom else "auto"},
    )
    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=session.region_name or "us-east-1",
        config=config,
    )
    return S3Store(client, bucket, prefix)
