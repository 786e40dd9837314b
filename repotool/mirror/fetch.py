"""Bounded HTTP for mirrors, over requests.

Every read carries a length limit (a server that sends more than declared is
cut off after one extra byte), a socket timeout (a stalled connection fails
after ``timeout`` seconds of silence) and a minimum average rate (a server that
drips bytes fails once the grace period is over).  Downloads resume with HTTP
Range from whatever an earlier attempt left in the partial file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import requests
import urllib3.exceptions

from repotool.errors import MirrorIntegrityError, MirrorTransportError

CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    #: seconds to connect, and the longest silence while reading
    timeout: float = 30.0
    #: minimum average bytes/second once ``grace`` seconds have passed
    min_rate: int = 1024
    grace: float = 5.0


@dataclass(frozen=True)
class SmallResponse:
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Download:
    #: bytes already on disk from an earlier attempt that the server let us keep
    resumed_from: int
    received: int


class Fetcher(Protocol):
    """The HTTP seam of the mirror area."""

    def get_small(
        self, url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse: ...

    def download(self, url: str, dest: Path, *, size: int) -> Download: ...


class HttpFetcher:
    """:class:`Fetcher` over requests, one keep-alive session per thread."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        self.limits = limits
        self._factory = session_factory
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        #: requests sent and body bytes received, for reports and benchmarks
        self.requests = 0
        self.bytes = 0

    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = self._factory()
            s.headers["User-Agent"] = "repotool-mirror"
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def _open(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        hdrs = {"Accept-Encoding": "identity", **headers}
        with self._lock:
            self.requests += 1
        try:
            return self._session().get(
                url, headers=hdrs, stream=True, timeout=self.limits.timeout, allow_redirects=True
            )
        except requests.Timeout as e:
            raise MirrorTransportError(
                f"no answer within {self.limits.timeout:g} seconds", where=url,
                hint="the server is down or overloaded; run again later",
            ) from e
        except requests.RequestException as e:
            raise MirrorTransportError(
                f"cannot connect: {_reason(e)}", where=url,
                hint="check the URL and that the server is up; run again later",
            ) from e

    def _read(self, resp: requests.Response, url: str, limit: int, sink: IO[bytes],
              expected: int | None) -> int:
        """Copy the body to ``sink``; at most ``limit`` bytes, bounded in time."""
        start = time.monotonic()
        got = 0
        raw = resp.raw
        try:
            while True:
                chunk = raw.read1(min(CHUNK, limit - got + 1), decode_content=False)
                if not chunk:
                    break
                got += len(chunk)
                if got > limit:
                    raise MirrorIntegrityError(
                        f"the server sent more than the {limit} bytes the metadata declares "
                        "(endless data)", where=url,
                        hint="the upstream is broken or hostile; nothing was kept",
                    )
                sink.write(chunk)
                elapsed = time.monotonic() - start
                if elapsed > self.limits.grace and got / elapsed < self.limits.min_rate:
                    raise MirrorTransportError(
                        f"too slow: {got} bytes in {elapsed:.1f} seconds, below the minimum "
                        f"of {self.limits.min_rate} bytes/second", where=url,
                        hint="the server is overloaded or throttled; run again to resume",
                    )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            if _is_timeout(e):
                raise MirrorTransportError(
                    f"stalled: no data for {self.limits.timeout:g} seconds after {got} bytes",
                    where=url, hint="the connection stalled; run again to resume",
                ) from e
            raise MirrorTransportError(
                f"the connection dropped after {got}"
                + (f" of {expected}" if expected is not None else "")
                + f" bytes: {_reason(e)}", where=url, hint="run again to resume",
            ) from e
        finally:
            with self._lock:
                self.bytes += got
            resp.close()
        return got

    def get_small(
        self, url: str, *, max_bytes: int, headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse:
        import io

        resp = self._open(url, headers or {})
        if resp.status_code not in allow:
            resp.close()
            raise _status_error(resp.status_code, url)
        buf = io.BytesIO()
        if resp.status_code == 200:
            self._read(resp, url, max_bytes, buf, None)
        else:
            resp.close()
        return SmallResponse(
            status=resp.status_code, body=buf.getvalue(),
            etag=resp.headers.get("ETag"), last_modified=resp.headers.get("Last-Modified"),
        )

    def download(self, url: str, dest: Path, *, size: int) -> Download:
        have = dest.stat().st_size if dest.exists() else 0
        if have >= size:
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._open(url, headers)
        if resp.status_code == 416 and have:
            resp.close()
            have, resp = 0, self._open(url, {})
        if resp.status_code == 206 and have:
            crange = resp.headers.get("Content-Range", "")
            if not crange.startswith(f"bytes {have}-"):
                resp.close()
                raise MirrorTransportError(
                    f"the server answered a resume request with the wrong range {crange!r}",
                    where=url, hint="run again; the partial file was discarded",
                )
        elif resp.status_code == 200:
            have = 0
        else:
            resp.close()
            raise _status_error(resp.status_code, url)
        remaining = size - have
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > remaining:
            resp.close()
            raise MirrorIntegrityError(
                f"the server declares {declared} bytes, the signed metadata {remaining}",
                where=url, hint="the upstream file differs from its metadata; run again later",
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "ab" if have else "wb") as sink:
            got = self._read(resp, url, remaining, sink, remaining)
        if got < remaining:
            raise MirrorTransportError(
                f"the file is truncated: the server sent {have + got} of {size} bytes",
                where=url, hint="run again to resume",
            )
        return Download(resumed_from=have, received=got)


def _status_error(status: int, url: str) -> MirrorTransportError:
    if status == 404:
        return MirrorTransportError(
            "not found (HTTP 404)", where=url,
            hint="the upstream is incomplete or mid-update; run again later",
        )
    return MirrorTransportError(f"HTTP status {status}", where=url, hint="run again later")


def _is_timeout(e: BaseException) -> bool:
    seen: BaseException | None = e
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args and
                                                      isinstance(seen.args[0], BaseException)
                                                      else None)
    return False


def _reason(e: BaseException) -> str:
    text = str(e)
    return text if len(text) < 200 else text[:200] + "…"
