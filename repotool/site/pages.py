"""Routers for the HTML pages and the feeds; both serve documents from the snapshot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from repotool.site.deps import Snapshot
from repotool.site.http import document_response

#: URL patterns of pages (each a folder); the snapshot decides which exist
PAGE_PATTERNS: tuple[str, ...] = (
    "/",
    "/news/",
    "/news/{slug}/",
    "/releases/",
    "/releases/{version}/",
    "/advisories/",
    "/advisories/{segment}/",
    "/advisories/{year}/{severity}/",
    "/lists/",
    "/mirrors/",
)
FEED_PATTERNS: tuple[str, ...] = ("/feeds/{name}",)


def _serve(request: Request, snapshot: Snapshot) -> Response:
    path = request.url.path
    doc = snapshot.document(path)
    if doc is None:
        return document_response(request, snapshot.not_found(), status_code=404)
    return document_response(request, doc)


async def page(request: Request, snapshot: Snapshot) -> Response:
    return _serve(request, snapshot)


async def page_without_slash(request: Request, snapshot: Snapshot) -> Response:
    target = request.url.path + "/"
    if target in snapshot.pages:
        return RedirectResponse(target, status_code=308)
    return document_response(request, snapshot.not_found(), status_code=404)


async def feed(request: Request, snapshot: Snapshot) -> Response:
    return _serve(request, snapshot)


def _router(
    patterns: tuple[str, ...],
    handler: Callable[[Request, Snapshot], Awaitable[Response]],
    *,
    redirect_bare: bool,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for pattern in patterns:
        router.add_api_route(pattern, handler, methods=["GET", "HEAD"])
        if redirect_bare and pattern != "/":
            router.add_api_route(pattern.rstrip("/"), page_without_slash, methods=["GET", "HEAD"])
    return router


def pages_router() -> APIRouter:
    return _router(PAGE_PATTERNS, page, redirect_bare=True)


def feeds_router() -> APIRouter:
    return _router(FEED_PATTERNS, feed, redirect_bare=False)
