"""``repotool site build``: the static export of the site into public/."""

from __future__ import annotations

import argparse
import textwrap
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from repotool.cli import Context
from repotool.report import Reporter, Step


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "site",
        parents=[common],
        help="render the site (pages, feeds) into public/",
        description=textwrap.fill(
            "The announcement site: release and advisory pages, news, mailing lists, "
            "Atom/RSS feeds. 'repotool serve' serves it live; 'site build' exports it as static "
            "files so that any web server or mirror can host it.",
            width=78,
        ),
        epilog="examples:\n  repotool site build\n  repotool site build --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site_sub = p.add_subparsers(dest="site_command", metavar="SUBCOMMAND")
    b = site_sub.add_parser(
        "build",
        parents=[common],
        help="export every page and feed into public/",
        description=textwrap.fill(
            "Render every page and feed into public/ (atomically, file by file), "
            "then write public/.site-export.json: 'repotool serve' switches to the new site "
            "only then. Does nothing when records, templates and published files are unchanged "
            "and the exported files are intact.",
            width=78,
        ),
        epilog="examples:\n"
        "  repotool site build                     then: repotool serve, or any static server\n"
        "  repotool site build --force             write every file again\n"
        "  repotool site build --public-dir /tmp/site-preview",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("--public-dir", type=Path, help="export here instead of the config's public/")
    b.add_argument("--force", action="store_true", help="export even when nothing changed")
    b.set_defaults(handler=run_build)
    n = site_sub.add_parser(
        "nginx-conf",
        parents=[common],
        help="write an nginx server block that serves public/",
        description=textwrap.fill(
            "Print (or write with --out) a production nginx server block for the "
            "static export in public/: the app's Content-Types, Cache-Control per file kind "
            "(repomd.xml revalidated, hashed metadata immutable, pages 60 s), the security "
            "headers, gzip and gzip_static, sendfile, no directory listing, dot-files hidden.",
            width=78,
        ),
        epilog="examples:\n"
        "  repotool site nginx-conf --server-name downloads.example.org\n"
        "  repotool site nginx-conf --server-name downloads.example.org \\\n"
        "      --out /etc/nginx/conf.d/perfsonar.conf\n"
        "then: nginx -t && nginx -s reload",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    n.add_argument("--out", type=Path, help="write the block to this file instead of stdout")
    n.add_argument("--server-name", default="_", help="nginx server_name (default '_': any)")
    n.add_argument("--listen", default="80", help="nginx listen value (default 80)")
    n.add_argument("--root", type=Path, help="the web root (default: the config's public/)")
    n.set_defaults(handler=run_nginx_conf)

    def show_help(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
        p.print_help()
        return {"summary": ""}

    p.set_defaults(handler=show_help)


def run_build(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.site.export import build_site
    from repotool.site.key_inspection import GpgKeyInspector

    result = build_site(
        ctx.config,
        _WarningsOnly(ctx.reporter),
        keys=GpgKeyInspector(ctx.runner),
        public_dir=args.public_dir,
        force=args.force,
    )
    if result.skipped:
        summary = f"site unchanged in {result.public_dir} ({len(result.files)} files)"
    else:
        summary = (
            f"site exported into {result.public_dir}: {len(result.written)} written, "
            f"{len(result.removed)} removed, {len(result.files)} files in all"
        )
    return {"summary": summary, **result.to_json()}


class _WarningsOnly:
    """The export's own closing line would repeat the command's summary, which
    says the same (and is the one --json and scripts read): warnings and
    progress pass, notices do not."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self._reporter.warn(message)

    def step(self, title: str, total: int | None) -> AbstractContextManager[Step]:
        return self._reporter.step(title, total)


def run_nginx_conf(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from repotool.atomic import write_atomic
    from repotool.site.nginx_conf import NginxSite, render_server_block

    root = (args.root or ctx.config.public_dir).resolve()
    text = render_server_block(NginxSite(str(root), args.server_name, args.listen))
    if args.out is None:  # the block is the command's output (with --json: its text)
        return {"summary": text.removesuffix("\n"), "root": str(root)}
    write_atomic(args.out, text.encode("utf-8"))
    return {"summary": f"nginx server block for {root} written to {args.out}", "root": str(root)}
