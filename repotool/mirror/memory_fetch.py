"""The in-memory fake of the :class:`~repotool.mirror.fetch.Fetcher` seam.

As httpx ships ``MockTransport`` beside its transports, the mirror area ships
:class:`MemoryFetcher` beside :class:`~repotool.mirror.fetch.HttpFetcher`: the
same contract (length limits, ETag/304, Range resume from the partial file,
the same errors and messages), answered from a dict of URL → bytes.  Tests of
what a sync decides use it; what needs a socket (timeouts, drips, dropped
connections, redirects) is tested against a real server on 127.0.0.1.
"""

from __future__ import annotations

import builtins
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from repotool.mirror.fetch import (
    Download,
    SmallResponse,
    endless_error,
    status_error,
    truncated_error,
)
from repotool.mirror.partial import PartialSink, resume_point


@dataclass(frozen=True)
class FakeRequest:
    url: str
    #: the Range header sent, if any
    range: str | None
    status: int


@dataclass
class MemoryFetcher:
    """A :class:`~repotool.mirror.fetch.Fetcher` serving ``files`` (URL → body).

    A missing URL is a 404.  ``log`` records every request; ``requests`` and
    ``bytes`` count like :class:`~repotool.mirror.fetch.HttpFetcher`'s.
    """

    files: dict[str, builtins.bytes] = field(default_factory=dict)
    log: list[FakeRequest] = field(default_factory=list)
    requests: int = 0
    #: body bytes sent (named as HttpFetcher's counter)
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _record(self, url: str, rng: str | None, status: int, sent: int) -> None:
        with self._lock:
            self.log.append(FakeRequest(url, rng, status))
            self.requests += 1
            self.bytes += sent

    @staticmethod
    def etag(body: builtins.bytes) -> str:
        return '"' + hashlib.sha1(body).hexdigest() + '"'

    def get_small(
        self,
        url: str,
        *,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse:
        body = self.files.get(url)
        if body is None:
            self._record(url, None, 404, 0)
            raise status_error(404, url)
        etag = self.etag(body)
        if (headers or {}).get("If-None-Match") == etag:
            self._record(url, None, 304, 0)
            if 304 not in allow:
                raise status_error(304, url)
            return SmallResponse(304, b"", etag, None)
        sent = min(len(body), max_bytes + 1)
        self._record(url, None, 200, sent)
        if len(body) > max_bytes:
            raise endless_error(max_bytes, url)
        return SmallResponse(200, body, etag, None)

    def download(self, url: str, dest: Path, *, size: int, algo: str | None = None) -> Download:
        have = resume_point(dest, size)
        rng = f"bytes={have}-" if have else None
        body = self.files.get(url)
        if body is None:
            self._record(url, rng, 404, 0)
            raise status_error(404, url)
        if have >= len(body):  # the server's 416: start over
            have = 0
        part = body[have:]
        remaining = size - have
        self._record(
            url, rng if have else None, 206 if have else 200, min(len(part), remaining + 1)
        )
        if len(part) > remaining:
            raise endless_error(remaining, url)
        sink = PartialSink(dest, have, algo)
        try:
            sink.write(part)
        finally:
            sink.close()
        if len(part) < remaining:
            raise truncated_error(have + len(part), size, url)
        return Download(resumed_from=have, received=len(part), digest=sink.digest())
