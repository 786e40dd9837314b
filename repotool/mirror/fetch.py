"""Bounded HTTP for mirrors, over requests.

Every read carries a length limit (a server that sends more than declared is
cut off after one extra byte), a socket timeout (a stalled connection fails
after ``timeout`` seconds of silence) and a minimum average rate (a server that
drips bytes fails once the grace period is over).  Downloads resume with HTTP
Range from whatever an earlier attempt left in the partial file, and are hashed
as they stream to disk.

Package downloads are the hot path of a sync (thousands of small files), where
``Session.get``'s per-request work (merging settings, reading ``~/.netrc`` and
the proxy environment, cookies, hooks) costs more CPU than the transfer.  So
:meth:`HttpFetcher.download` resolves each origin once through the session
(proxies, ``~/.netrc``, CA bundle, the mounted adapter) and then sends its
requests on that adapter's urllib3 connection pool with the adapter's own
arguments (headers, retries, timeouts; no cookies: a mirror serves static
files).  An origin that needs a proxy or credentials, a session with another
adapter mounted, and every redirect go through ``Session.get`` as before.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import urllib3
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri, select_proxy

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
    #: hex digest of the whole file (kept head and new bytes) when an algorithm was asked for
    digest: str | None = None


class Fetcher(Protocol):
    """The HTTP seam of the mirror area."""

    def get_small(
        self,
        url: str,
        *,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (200,),
    ) -> SmallResponse: ...

    def download(self, url: str, dest: Path, *, size: int, algo: str | None = None) -> Download: ...


@dataclass(frozen=True)
class _Route:
    """How one thread sends requests to one origin on the fast path."""

    pool: urllib3.HTTPConnectionPool
    headers: Mapping[str, str]
    retries: urllib3.Retry


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
        self._timeout = urllib3.Timeout(connect=limits.timeout, read=limits.timeout)
        #: requests sent and body bytes received, for reports and benchmarks
        self.requests = 0
        self.bytes = 0

    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = self._factory()
            s.headers["User-Agent"] = "repotool-mirror"
            self._local.session = s
            self._local.routes = {}
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def _route(self, origin: str, url: str) -> _Route | None:
        """This thread's fast path to ``origin``, or None where requests must decide."""
        session = self._session()
        routes: dict[str, _Route | None] = self._local.routes
        if origin in routes:
            known = routes[origin]
            # a pool the session's pool manager evicted is closed: resolve again
            if known is None or known.pool.pool is not None:
                return known
        req = session.prepare_request(requests.Request("GET", url))
        prepared_url = req.url or url
        settings = session.merge_environment_settings(prepared_url, {}, True, None, None)
        adapter = session.get_adapter(prepared_url)
        fast = (
            type(adapter) is HTTPAdapter
            and not select_proxy(prepared_url, settings["proxies"])
            and "Authorization" not in req.headers
            and "Cookie" not in req.headers
        )
        route = (
            _Route(
                pool=adapter.get_connection_with_tls_context(
                    req, settings["verify"], cert=settings["cert"]
                ),
                headers={**session.headers, "Accept-Encoding": "identity"},
                retries=adapter.max_retries,
            )
            if fast and isinstance(adapter, HTTPAdapter)
            else None
        )
        routes[origin] = route
        return route

    def _open(
        self, url: str, headers: Mapping[str, str], *, pooled: bool = False
    ) -> urllib3.BaseHTTPResponse:
        with self._lock:
            self.requests += 1
        if pooled:
            scheme, _, rest = url.partition("://")
            host, _, path = rest.partition("/")
            try:
                route = self._route(f"{scheme}://{host}", url)
            except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as e:
                raise self._open_error(e, url) from e  # e.g. a URL requests cannot parse
            if route is not None:
                try:
                    resp = route.pool.urlopen(
                        "GET",
                        requote_uri("/" + path),
                        headers={**route.headers, **headers},
                        redirect=False,
                        assert_same_host=False,
                        preload_content=False,
                        decode_content=False,
                        retries=route.retries,
                        timeout=self._timeout,
                    )
                except (
                    requests.RequestException,
                    urllib3.exceptions.HTTPError,
                    OSError,
                    ValueError,
                ) as e:
                    raise self._open_error(e, url) from e
                if not resp.get_redirect_location():
                    return resp
                _finish(resp)  # let requests follow (and check) the redirect
        try:
            raw: urllib3.BaseHTTPResponse = (
                self._session()
                .get(
                    url,
                    headers={"Accept-Encoding": "identity", **headers},
                    stream=True,
                    timeout=self.limits.timeout,
                    allow_redirects=True,
                )
                .raw
            )
        except (requests.RequestException, ValueError) as e:
            raise self._open_error(e, url) from e
        return raw

    def _open_error(self, e: BaseException, url: str) -> MirrorTransportError:
        if isinstance(
            e,
            requests.exceptions.InvalidURL
            | requests.exceptions.MissingSchema
            | requests.exceptions.InvalidSchema
            | urllib3.exceptions.LocationValueError,
        ):
            return MirrorTransportError(
                f"not a valid http(s) URL: {_reason(e)}",
                where=url,
                hint="fix the URL (in mirrors.toml or on the command line)",
            )
        reason = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e
        if (
            isinstance(e, requests.Timeout)
            or isinstance(reason, urllib3.exceptions.ReadTimeoutError)
            or (
                isinstance(reason, urllib3.exceptions.ConnectTimeoutError)
                and not isinstance(reason, urllib3.exceptions.NewConnectionError)
            )
        ):
            return MirrorTransportError(
                f"no answer within {self.limits.timeout:g} seconds",
                where=url,
                hint="the server is down or overloaded; run again later",
            )
        return MirrorTransportError(
            f"cannot connect: {_reason(e)}",
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
                    raise MirrorIntegrityError(
                        f"the server sent more than the {limit} bytes the metadata declares "
                        "(endless data)",
                        where=url,
                        hint="the upstream is broken or hostile; nothing was kept",
                    )
                write(chunk)
                elapsed = time.monotonic() - start
                if elapsed > self.limits.grace and got / elapsed < self.limits.min_rate:
                    raise MirrorTransportError(
                        f"too slow: {got} bytes in {elapsed:.1f} seconds, below the minimum "
                        f"of {self.limits.min_rate} bytes/second",
                        where=url,
                        hint="the server is overloaded or throttled; run again to resume",
                    )
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
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
            raise _status_error(resp.status, url)
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
        try:
            have = os.stat(dest).st_size
        except FileNotFoundError:
            have = 0
        if have >= size:
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._open(url, headers, pooled=True)
        if resp.status == 416 and have:
            _finish(resp)
            have, resp = 0, self._open(url, {}, pooled=True)
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
            raise _status_error(resp.status, url)
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
            hasher = (
                None if algo is None else _head_hasher(dest, algo) if have else hashlib.new(algo)
            )
            fd = _open_partial(dest, append=bool(have))
        except BaseException:
            _finish(resp)
            raise
        try:

            def write(chunk: bytes) -> None:
                if hasher is not None:
                    hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]

            got = self._read(resp, url, remaining, write, remaining)
        finally:
            os.close(fd)
        if got < remaining:
            raise MirrorTransportError(
                f"the file is truncated: the server sent {have + got} of {size} bytes",
                where=url,
                hint="run again to resume",
            )
        return Download(
            resumed_from=have,
            received=got,
            digest=hasher.hexdigest() if hasher is not None else None,
        )


def _finish(resp: urllib3.BaseHTTPResponse) -> None:
    """Done with a response: an unread body closes its connection, a read one is reused."""
    resp.close()
    resp.release_conn()


def _open_partial(dest: Path, *, append: bool) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    try:
        return os.open(dest, flags, 0o666)
    except FileNotFoundError:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return os.open(dest, flags, 0o666)


def _head_hasher(dest: Path, algo: str) -> hashlib._Hash:
    """A hash of the part of ``dest`` an earlier attempt left (the resume point)."""
    with open(dest, "rb") as f:
        return hashlib.file_digest(f, algo)


def _status_error(status: int, url: str) -> MirrorTransportError:
    if status == 404:
        return MirrorTransportError(
            "not found (HTTP 404)",
            where=url,
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
        seen = (
            seen.__cause__
            or seen.__context__
            or (seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
        )
    return False


def _reason(e: BaseException) -> str:
    text = str(e)
    return text if len(text) < 200 else text[:200] + "…"
