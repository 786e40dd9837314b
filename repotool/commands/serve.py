"""``repotool serve``: the published tree and the site on one HTTP port."""

from __future__ import annotations

import argparse
from typing import Any

from repotool.cli import Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve public/ and the site over HTTP",
        description="Serve the published tree (repositories, keys, media) and the site with "
        "FastAPI/uvicorn. Hosts point their .repo file here; readers open the site.",
        epilog="example: repotool serve --port 8080   then: curl http://127.0.0.1:8080/repo/perfsonar.repo",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    import uvicorn

    from repotool.site.app import create_app

    app = create_app(ctx.config)
    ctx.reporter.info(f"Serving {ctx.config.public_dir} on http://{args.host}:{args.port}/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return {"summary": "server stopped", "host": args.host, "port": args.port}
