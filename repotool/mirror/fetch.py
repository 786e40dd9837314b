"""Bounded HTTP for mirrors, over urllib3.

Every read carries a length limit (a server that sends more than declared is
cut off after one extra byte), a socket timeout (a stalled connection fails
after ``timeout`` seconds of silence) and a minimum average rate (a server that
drips bytes fails once the grace period is over).  Downloads resume with HTTP
Range from whatever an earlier attempt left in the partial file
(:mod:`repotool.mirror.partial`), and are hashed as they stream to disk.

:class:`HttpFetcher` sends every request through one thread-safe urllib3
``PoolManager`` (keep-alive connections per origin, redirects followed, no
retries: a failed file fails the sync, and the next run resumes it).  Proxies
come from the usual ``http_proxy``/``https_proxy``/``no_proxy`` variables.  A
mirror serves static files: no cookies, no ``~/.netrc``, no content encoding.

:class:`repotool.mirror.memory_fetch.MemoryFetcher` is the in-memory fake of
the seam, for tests that need no socket.
"""

from __future__ import annotations

import io
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import urllib3
import urllib3.exceptions

from repotool.errors import MirrorIntegrityError, MirrorTransportError
from repotool.mirror.partial import PartialSink, resume_point

CHUNK = 64 * 1024
#: redirects followed per request (a mirror network may redirect to a mirror once or twice)
MAX_REDIRECTS = 5
HEADERS = {"User-Agent": "repotool-mirror", "Accept-Encoding": "identity"}


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
    #: hex digest of the whole file (kept head and new bytes) when an algorithm was asked for
    digest: str | None = None


class Fetcher(Protocol):
    """The HTTP seam of the mirror area.

    ``get_small`` reads a whole body of at most ``max_bytes`` (a status outside
    ``allow`` is a :class:`MirrorTransportError`); ``download`` streams a file of
    exactly ``size`` bytes into ``dest``, resuming from what ``dest`` holds, and
    returns its digest when ``algo`` is given.  More bytes than allowed are a
    :class:`MirrorIntegrityError`, fewer a :class:`MirrorTransportError`.
    """

    def get_small(
        self,
        url: str,
        *,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse: ...

    def download(self, url: str, dest: Path, *, size: int, algo: str | None = None) -> Download: ...


class HttpFetcher:
    """:class:`Fetcher` over urllib3, shared by every thread of a sync."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        connections: int = 16,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self.limits = limits
        #: scheme (and "no", "all") → proxy URL, as urllib reads them from the environment
        self._proxies = dict(
            urllib.request.getproxies_environment() if proxies is None else proxies
        )
        self._connections = max(1, connections)
        self._managers: dict[str, urllib3.PoolManager] = {}
        self._origin_proxy: dict[str, str] = {}
        self._lock = threading.Lock()
        self._timeout = urllib3.Timeout(connect=limits.timeout, read=limits.timeout)
        # no retries (a failed file fails the sync; the next run resumes it), but
        # redirects, counted; read=False re-raises read errors as themselves
        self._retries = urllib3.Retry(
            total=None,
            connect=0,
            read=False,
            status=0,
            other=0,
            redirect=MAX_REDIRECTS,
            raise_on_redirect=True,
            respect_retry_after_header=False,
        )
        #: requests sent and body bytes received, for reports and benchmarks
        self.requests = 0
        self.bytes = 0

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def _proxy_for(self, url: str) -> str:
        """The proxy for ``url``'s origin ("" for none), decided once per origin."""
        if not self._proxies:
            return ""
        scheme, _, rest = url.partition("://")
        authority = rest.split("/", 1)[0]
        origin = scheme + "://" + authority
        known = self._origin_proxy.get(origin)
        if known is None:
            proxy = self._proxies.get(scheme.lower()) or self._proxies.get("all") or ""
            host = authority.rpartition("@")[2]
            if proxy and bypasses_proxy(host, self._proxies.get("no", "")):
                proxy = ""
            known = self._origin_proxy[origin] = proxy
        return known

    def _manager(self, url: str) -> urllib3.PoolManager:
        proxy = self._proxy_for(url)
        manager = self._managers.get(proxy)
        if manager is None:
            with self._lock:
                manager = self._managers.get(proxy)
                if manager is None:
                    manager = (
                        urllib3.ProxyManager(
                            proxy,
                            num_pools=32,
                            maxsize=self._connections,
                            headers=HEADERS,
                            retries=self._retries,
                            timeout=self._timeout,
                        )
                        if proxy
                        else urllib3.PoolManager(
                            num_pools=32,
                            maxsize=self._connections,
                            headers=HEADERS,
                            retries=self._retries,
                            timeout=self._timeout,
                        )
                    )
                    self._managers[proxy] = manager
        return manager

    def _open(self, url: str, headers: Mapping[str, str]) -> urllib3.BaseHTTPResponse:
        with self._lock:
            self.requests += 1
        try:
            return self._manager(url).urlopen(
                "GET",
                url,
                headers={**HEADERS, **headers},
                redirect=True,
                # explicitly: PoolManager gives a redirected request Retry.DEFAULT otherwise
                retries=self._retries,
                preload_content=False,
                decode_content=False,
            )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            raise self._open_error(e, url) from e

    def _open_error(self, e: BaseException, url: str) -> MirrorTransportError:
        if isinstance(e, urllib3.exceptions.LocationValueError):
            return MirrorTransportError(
                f"not a valid http(s) URL: {_reason(e)}",
                where=url,
                hint="fix the URL (in mirrors.toml or on the command line)",
            )
        reason = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e
        if isinstance(reason, urllib3.exceptions.ResponseError) and "redirect" in str(reason):
            return MirrorTransportError(
                f"more than {MAX_REDIRECTS} redirects",
                where=url,
                hint="the server redirects in a loop; check the URL",
            )
        if isinstance(reason, urllib3.exceptions.ReadTimeoutError) or (
            isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(reason, urllib3.exceptions.NewConnectionError)
        ):
            return MirrorTransportError(
                f"no answer within {self.limits.timeout:g} seconds",
                where=url,
                hint="the server is down or overloaded; run again later",
            )
        return MirrorTransportError(
            f"cannot connect: {_reason(reason or e)}",
            where=url,
            hint="check the URL and that the server is up; run again later",
        )

    def _read(
        self,
        resp: urllib3.BaseHTTPResponse,
        url: str,
        limit: int,
        write: Callable[[bytes], object],
        expected: int | None,
    ) -> int:
        """Pass the body to ``write``; at most ``limit`` bytes, bounded in time."""
        start = time.monotonic()
        got = 0
        try:
            while True:
                chunk = resp.read1(min(CHUNK, limit - got + 1), decode_content=False)
                if not chunk:
                    break
                got += len(chunk)
                if got > limit:
                    raise endless_error(limit, url)
                write(chunk)
                elapsed = time.monotonic() - start
                if elapsed > self.limits.grace and got / elapsed < self.limits.min_rate:
                    raise MirrorTransportError(
                        f"too slow: {got} bytes in {elapsed:.1f} seconds, below the minimum "
                        f"of {self.limits.min_rate} bytes/second",
                        where=url,
                        hint="the server is overloaded or throttled; run again to resume",
                    )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if _is_timeout(e):
                raise MirrorTransportError(
                    f"stalled: no data for {self.limits.timeout:g} seconds after {got} bytes",
                    where=url,
                    hint="the connection stalled; run again to resume",
                ) from e
            raise MirrorTransportError(
                f"the connection dropped after {got}"
                + (f" of {expected}" if expected is not None else "")
                + f" bytes: {_reason(e)}",
                where=url,
                hint="run again to resume",
            ) from e
        finally:
            with self._lock:
                self.bytes += got
            _finish(resp)
        return got

    def get_small(
        self,
        url: str,
        *,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse:
        resp = self._open(url, headers or {})
        if resp.status not in allow:
            _finish(resp)
            raise status_error(resp.status, url)
        buf = io.BytesIO()
        if resp.status == 200:
            self._read(resp, url, max_bytes, buf.write, None)
        else:
            _finish(resp)
        return SmallResponse(
            status=resp.status,
            body=buf.getvalue(),
            etag=resp.headers.get("ETag"),
            last_modified=resp.headers.get("Last-Modified"),
        )

    def download(self, url: str, dest: Path, *, size: int, algo: str | None = None) -> Download:
        have = resume_point(dest, size)
        resp = self._open(url, {"Range": f"bytes={have}-"} if have else {})
        if resp.status == 416 and have:
            _finish(resp)
            have, resp = 0, self._open(url, {})
        if resp.status == 206 and have:
            crange = resp.headers.get("Content-Range", "")
            if not crange.startswith(f"bytes {have}-"):
                _finish(resp)
                raise MirrorTransportError(
                    f"the server answered a resume request with the wrong range {crange!r}",
                    where=url,
                    hint="run again; the partial file was discarded",
                )
        elif resp.status == 200:
            have = 0
        else:
            _finish(resp)
            raise status_error(resp.status, url)
        remaining = size - have
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > remaining:
            _finish(resp)
            raise MirrorIntegrityError(
                f"the server declares {declared} bytes, the signed metadata {remaining}",
                where=url,
                hint="the upstream file differs from its metadata; run again later",
            )
        try:
            sink = PartialSink(dest, have, algo)
        except BaseException:
            _finish(resp)
            raise
        try:
            got = self._read(resp, url, remaining, sink.write, remaining)
        finally:
            sink.close()
        if got < remaining:
            raise truncated_error(have + got, size, url)
        return Download(resumed_from=have, received=got, digest=sink.digest())


def bypasses_proxy(authority: str, no_proxy: str) -> bool:
    """Pure: whether ``no_proxy`` (``"localhost,.example.net,10.0.0.1"``, ``"*"``) names the
    host of ``authority`` (``host[:port]``), a domain it is in, or its host and port."""
    host = authority.lower()
    if host.startswith("["):  # [v6]:port
        bare = host[1:].partition("]")[0]
    else:
        bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        entry = entry.lstrip(".")
        if entry and (
            entry in (host, bare) or bare.endswith("." + entry) or host.endswith("." + entry)
        ):
            return True
    return False


def _finish(resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response: an unread body closes its connection, a read one is reused."""
    resp.close()
    resp.release_conn()


# --- errors shared by every Fetcher (the real one and the fake) ------------------


def status_error(status: int, url: str) -> MirrorTransportError:
    if status == 404:
        return MirrorTransportError(
            "not found (HTTP 404)",
            where=url,
            hint="the upstream is incomplete or mid-update; run again later",
        )
    return MirrorTransportError(f"HTTP status {status}", where=url, hint="run again later")


def endless_error(limit: int, url: str) -> MirrorIntegrityError:
    return MirrorIntegrityError(
        f"the server sent more than the {limit} bytes the metadata declares (endless data)",
        where=url,
        hint="the upstream is broken or hostile; nothing was kept",
    )


def truncated_error(got: int, size: int, url: str) -> MirrorTransportError:
    return MirrorTransportError(
        f"the file is truncated: the server sent {got} of {size} bytes",
        where=url,
        hint="run again to resume",
    )


def _is_timeout(e: BaseException) -> bool:
    seen: BaseException | None = e
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError | urllib3.exceptions.TimeoutError):
            return True
        seen = (
            seen.__cause__
            or seen.__context__
            or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
        )
    return False


def _reason(e: BaseException) -> str:
    text = str(e)
    return text if len(text) < 200 else text[:200] + "…"
