"""`repotool site nginx-conf` (issue 15 item 4): the real nginx, run with the server block
it writes over the session's release, sends each kind of file with the app's
Content-Type and Cache-Control, the security headers everywhere, no listings, no
dot-entries, and a host installs with gpgcheck and repo_gpgcheck through it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from repotool.config import load_config
from repotool.errors import SiteError
from repotool.site.app import create_app
from repotool.site.files import CACHE_IMMUTABLE
from repotool.site.http import CONTENT_SECURITY_POLICY
from repotool.site.nginx_conf import NginxSite, render_server_block
from tests.conftest import DnfHost, Released, free_port, run_repotool
from tests.site.site_support import InProcessClient, run_nginx

REPODATA = "/repo/el7/x86_64/repodata/"


@pytest.fixture(scope="module")
def nginx_url(released: Released, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("nginx-conf")
    port = free_port()
    out = tmp / "perfsonar.conf"
    done = run_repotool(
        released.project,
        "site",
        "nginx-conf",
        "--out",
        str(out),
        "--listen",
        f"127.0.0.1:{port}",
        "--server-name",
        "downloads.example.org",
    )
    assert done.returncode == 0, done.stderr
    assert f'root "{released.public.resolve()}";' in out.read_text()
    with run_nginx(out, tmp / "prefix", port) as url:
        yield url


@pytest.fixture(scope="module")
def app(released: Released) -> InProcessClient:
    return InProcessClient(create_app(load_config(released.project / "repotool.toml")))


def _one(folder: Path, suffix: str) -> str:
    return next(p.name for p in sorted(folder.iterdir()) if p.name.endswith(suffix))


def _kinds(public: Path) -> dict[str, str]:
    """One URL of each kind of file -> the Cache-Control nginx must send."""
    repodata = public / REPODATA.strip("/")
    media = next(p for p in sorted((public / "releases").iterdir()) if p.is_dir())
    return {
        REPODATA + "repomd.xml": "no-cache",
        REPODATA + "repomd.xml.asc": "no-cache",
        REPODATA + "repomd.xml.key": "no-cache",
        REPODATA + _one(repodata, "-primary.xml.gz"): CACHE_IMMUTABLE,
        "/repo/el7/x86_64/Packages/" + _one(public / "repo/el7/x86_64/Packages", ".rpm"): (
            "no-cache"
        ),
        "/keys/RPM-GPG-KEY-perfsonar": "no-cache",
        "/repo/perfsonar.repo": "no-cache",
        f"/releases/{media.name}/SHA256SUMS": "no-cache",
        f"/releases/{media.name}/SHA256SUMS.asc": "no-cache",
        f"/releases/{media.name}/" + _one(media, ".iso"): "no-cache",
        f"/releases/{media.name}/media.json": "no-cache",
        "/": "public, max-age=60",
        "/advisories/": "public, max-age=60",
        f"/releases/{media.name}/": "public, max-age=60",
        "/feeds/advisories.atom": "public, max-age=60",
        "/feeds/news.rss": "public, max-age=60",
        "/static/" + _one(public / "static", ".css"): "public, max-age=60",
    }


def test_nginx_sends_the_apps_types_and_caching_for_every_kind_of_file(
    released: Released, nginx_url: str, app: InProcessClient
) -> None:
    kinds = _kinds(released.public)
    with httpx.Client(base_url=nginx_url, timeout=10) as client:
        for path, cache in kinds.items():
            theirs = client.get(path, headers={"accept-encoding": "gzip"})
            ours = app.get(path, headers={"accept-encoding": "gzip"})
            assert theirs.status_code == ours.status_code == 200, path
            assert theirs.headers["cache-control"] == cache, path
            assert theirs.headers["content-type"] == ours.headers["content-type"], path
            assert theirs.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert theirs.headers["x-content-type-options"] == "nosniff", path
            assert theirs.headers["x-frame-options"] == "DENY", path
            assert theirs.headers["referrer-policy"] == "no-referrer", path
            assert theirs.content == ours.content, path
        # compressed metadata goes as is (its checksum in repomd.xml holds); text is gzipped
        primary = next(p for p in kinds if p.endswith("-primary.xml.gz"))
        raw = client.get(primary, headers={"accept-encoding": "gzip"})
        assert "content-encoding" not in raw.headers
        assert raw.content == (released.public / primary.lstrip("/")).read_bytes()
        page = client.get("/advisories/", headers={"accept-encoding": "gzip"})
        assert page.headers["content-encoding"] == "gzip"
        assert page.headers["vary"] == "Accept-Encoding"


def test_nginx_hides_state_lists_no_folder_and_keeps_headers_on_errors(
    released: Released, nginx_url: str
) -> None:
    with httpx.Client(base_url=nginx_url, timeout=10) as client:
        not_found_page = (released.public / "404.html").read_bytes()
        for path in (
            "/.site-export.json",
            "/repo/el7/x86_64/Packages/",  # a folder without index.html: no listing
            "/keys/",
            "/nowhere/",
        ):
            r = client.get(path)
            assert r.status_code == 404, path
            assert r.content == not_found_page, path
            assert b"Index of" not in r.content
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        # a page's folder without its slash: a relative redirect to it
        r = client.get("/advisories")
        assert r.status_code == 301 and r.headers["location"] == "/advisories/"
        # the metadata generation behind repodata/ and the CSAF tree stay reachable
        generation = (released.public / REPODATA.strip("/")).resolve().name
        assert client.get(f"/repo/el7/x86_64/{generation}/repomd.xml").status_code == 200
        if (released.public / ".well-known/csaf/provider-metadata.json").exists():
            r = client.get("/.well-known/csaf/provider-metadata.json")
            assert r.status_code == 200
        assert client.post("/repo/perfsonar.repo").status_code == 405
        assert "nginx/" not in client.get("/").headers.get("server", "")


def test_host_installs_with_gpg_checks_through_nginx(
    released: Released, nginx_url: str, tmp_path: Path
) -> None:
    repo_file = (released.public / "repo/perfsonar.repo").read_text()
    assert "gpgcheck=1" in repo_file and "repo_gpgcheck=1" in repo_file
    assert released.url in repo_file
    host = DnfHost(tmp_path / "host")
    host.add_repo_file(repo_file.replace(released.url, nginx_url))
    done = host.dnf("install", "perfsonar-toolkit", check=True)
    assert "Importing GPG key" in done.stdout + done.stderr
    assert any(n.startswith("perfsonar-toolkit-3.3.2-") for n in host.installed())


def test_gzip_static_sends_a_file_gz_placed_beside_a_file(tmp_path: Path) -> None:
    root = tmp_path / "public"
    root.mkdir()
    text = b"".join(b"line %d of a text file\n" % i for i in range(200))
    (root / "notes.txt").write_bytes(text)
    # a marker only the .gz variant carries: proves nginx sent the file, not its own gzip
    (root / "notes.txt.gz").write_bytes(gzip.compress(text + b"(precompressed)\n", mtime=0))
    port = free_port()
    block = tmp_path / "server.conf"
    block.write_text(render_server_block(NginxSite(str(root), listen=f"127.0.0.1:{port}")))
    with run_nginx(block, tmp_path / "prefix", port) as url:
        got = httpx.get(url + "/notes.txt", headers={"accept-encoding": "gzip"}, timeout=10)
        assert got.headers["content-encoding"] == "gzip"
        assert got.content.endswith(b"(precompressed)\n")
        plain = httpx.get(url + "/notes.txt", headers={"accept-encoding": "identity"}, timeout=10)
        assert plain.content == text


@pytest.mark.parametrize(
    ("site", "words"),
    [
        (NginxSite("relative/public"), "not an absolute path"),
        (NginxSite("/srv/pub lic"), "not an absolute path"),
        (NginxSite("/srv/public;evil"), "not an absolute path"),
        (NginxSite("/srv/public", server_name="a.org; return 200"), "not a list of host names"),
        (NginxSite("/srv/public", listen="80; root /"), "not one nginx takes"),
        (NginxSite("/srv/public", listen="80\n}"), "not one nginx takes"),
    ],
)
def test_values_that_would_change_the_config_are_refused(site: NginxSite, words: str) -> None:
    with pytest.raises(SiteError, match=words) as caught:
        render_server_block(site)
    assert caught.value.hint


def test_the_command_names_a_bad_value_and_writes_nothing(
    released: Released, tmp_path: Path
) -> None:
    out = tmp_path / "site.conf"
    done = run_repotool(
        released.project, "site", "nginx-conf", "--out", str(out), "--listen", "80; root /"
    )
    assert done.returncode == 9, done.stderr
    assert "--listen" in done.stderr and "not one nginx takes" in done.stderr
    assert not out.exists()
    printed = run_repotool(released.project, "site", "nginx-conf")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("# nginx server block")
    assert "listen 80;" in printed.stdout and "server_name _;" in printed.stdout
