"""Shared fixtures: fresh project copies, one full release, a server, a dnf host."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from repotool.process import started_with_tmpdir_under, stop_gpg_agents_in

REPO_ROOT = Path(__file__).resolve().parent.parent
REPOTOOL = [sys.executable, "-m", "repotool"]
PROJECT_FILES = ("repotool.toml", "specs", "web", "mirror")
MEDIA_CACHE = REPO_ROOT / ".repotool" / "media-cache"


# --- gpg-agents: every project and key home a test makes starts one -----------------


def gpg_agents_under(root: Path) -> dict[int, Path]:
    """The running gpg-agents whose home lies under root, or that were started with
    TMPDIR under root: pid -> home.

    Only these are the tests' own: agents of other people's homes (other test
    runs on the machine) are neither counted nor touched."""
    root = root.resolve()
    found: dict[int, Path] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if not argv or Path(argv[0].decode(errors="replace")).name != "gpg-agent":
            continue
        home = _agent_home(argv, proc)
        if home is not None and (
            home.resolve().is_relative_to(root) or started_with_tmpdir_under(proc, root)
        ):
            found[int(proc.name)] = home
    return found


def _agent_home(argv: list[bytes], proc: Path) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == b"--homedir" and i + 1 < len(argv):
            return Path(os.path.abspath(argv[i + 1].decode(errors="replace")))
        if arg.startswith(b"--homedir="):
            return Path(os.path.abspath(arg.split(b"=", 1)[1].decode(errors="replace")))
    try:  # started without --homedir: GNUPGHOME names the home
        for entry in (proc / "environ").read_bytes().split(b"\0"):
            if entry.startswith(b"GNUPGHOME="):
                return Path(os.path.abspath(entry.split(b"=", 1)[1].decode(errors="replace")))
    except OSError:
        pass
    return None


def stop_gpg_agents_under(root: Path, *, wait: float = 10.0) -> dict[int, Path]:
    """`gpgconf --homedir H --kill all` for every home under root that has an agent
    (SIGTERM for an agent whose home no longer exists).

    Returns the agents still running after `wait` seconds (those are then sent
    SIGTERM by their pid, so that even a failed check leaves nothing behind)."""
    agents = gpg_agents_under(root)
    # an agent whose home is gone (dnf deletes its throwaway homes) cannot be
    # reached through gpgconf: it is stopped by its pid
    for pid, home in agents.items():
        if not home.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    homes = {home for home in agents.values() if home.exists()}
    for home in sorted(homes):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    deadline = time.monotonic() + wait
    left = gpg_agents_under(root)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = gpg_agents_under(root)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return left


def processes_working_under(root: Path) -> dict[int, str]:
    """Processes (other than this one) whose working folder lies under root: pid ->
    command line. The tests start servers, qemu and tools in their temp folders."""
    root = root.resolve()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, a kernel thread, or not ours to read
            continue
        if argv and cwd.is_relative_to(root):
            found[int(proc.name)] = argv.strip()
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_gpg_agent_outlives_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stops the gpg-agent of every GNUPGHOME the tests made (all lie under the
    session's base temp folder) and fails the run if one survives its gpgconf kill;
    fails it too if any process a test started still works in the temp folders
    (a server, qemu, a tool), after stopping it."""
    base = tmp_path_factory.getbasetemp()
    # Programs put their throwaway files under TMPDIR: dnf's librepo checks
    # signatures in GnuPG homes made there and leaves their agents running. With
    # TMPDIR inside the session's folder those agents are found and stopped below.
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
    # a tool run as root against a chroot can unlink the host's device nodes
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), (
        "/dev/null is no longer a character device after the run (restore it: "
        "rm -f /dev/null; mknod -m 666 /dev/null c 1 3)"
    )
    left = stop_gpg_agents_under(base)
    assert not left, "gpg-agents still running after `gpgconf --kill all`: " + ", ".join(
        f"pid {pid} ({home})" for pid, home in sorted(left.items())
    )
    deadline = time.monotonic() + 10
    strays = processes_working_under(base)
    while strays and time.monotonic() < deadline:
        time.sleep(0.2)
        strays = processes_working_under(base)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not strays, "processes the tests started are still running: " + "; ".join(
        f"pid {pid}: {argv}" for pid, argv in sorted(strays.items())
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_project(
    dest: Path,
    *,
    base_url: str,
    share_key_from: Path | None = None,
    share_builds_from: Path | None = None,
) -> Path:
    """A copy of the repository's project files whose URLs point at base_url.

    share_key_from: a project whose development key this one uses (no key made);
    share_builds_from: a project whose build cache this one starts with (the same
    specs are not built again; they are still signed and published afresh)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)
    toml = dest / "repotool.toml"
    text = toml.read_text().replace("http://127.0.0.1:8080", base_url)
    # the live media's base (.deb files) is fetched once for all test projects
    setting = f'cache_dir = "{MEDIA_CACHE}"\n'
    if re.search(r"^\[media\]\s*$", text, re.M):
        text = re.sub(
            r"^\[media\]\s*$", "[media]\n" + setting.rstrip("\n"), text, count=1, flags=re.M
        )
    else:
        text += "\n[media]\n" + setting
    toml.write_text(text)
    if share_key_from is not None:
        shutil.copytree(share_key_from / ".repotool" / "gnupg", dest / ".repotool" / "gnupg")
    if share_builds_from is not None:
        cache = ".repotool/build-cache"
        shutil.copytree(share_builds_from / cache, dest / cache, symlinks=True)
    return dest


def run_repotool(
    project: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, in the project folder."""
    return subprocess.run(
        [*REPOTOOL, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else dict(os.environ),
    )


def release_json(project: Path) -> dict[str, object]:
    done = run_repotool(project, "release", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and symlink under root with its content (or link target)."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(project: Path, port: int) -> Server:
    """`repotool serve` on the port the project's URLs name; its log goes to a file
    (a pipe nobody reads could fill up and stall the server)."""
    log = project / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*REPOTOOL, "serve", "--port", str(port), "--quiet"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"repotool serve exited: {log.read_text(errors='replace')}")
        try:
            if requests.get(url + "/repo/perfsonar.repo", timeout=5).status_code == 200:
                return Server(url, port, proc)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"repotool serve did not answer within 60 s: {log.read_text()}")


@dataclass
class Released:
    project: Path
    port: int
    url: str
    result: dict[str, object]

    @property
    def public(self) -> Path:
        return self.project / "public"


@pytest.fixture(scope="session")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Released]:
    """One full `repotool release` of the embedded default, made once per run.

    Read-only for tests: a test that changes a release works on
    `copy_of_release` (the `release_copy` fixture).  Checked at the end: the
    published tree is what this release made."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    project = make_project(tmp_path_factory.mktemp("released") / "project", base_url=url)
    done = Released(project, port, url, release_json(project))
    published = tree_digest(done.public)
    yield done
    assert tree_digest(done.public) == published, "a test changed the session's release"


def copy_project(project: Path, dest: Path) -> Path:
    """A private copy of a released project: project files, state folder (build
    cache, signed packages, repository index, key) and public/, symlinks as links.

    Its URLs still name the original's port; repotool finds everything it needs
    in the copy, so the next `repotool release` there rebuilds nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(project), str(dest)], check=True, timeout=120)
    for log in dest.glob("serve-*.log"):  # the original's server, not the copy's
        log.unlink()
    return dest


def copy_of_release(released: Released, dest: Path) -> Path:
    """A private copy of the session's release (see copy_project)."""
    return copy_project(released.project, dest)


@pytest.fixture
def release_copy(released: Released, tmp_path: Path) -> Path:
    """A project released exactly like the session's, to change at will."""
    return copy_of_release(released, tmp_path / "p")


@pytest.fixture(scope="session")
def served_url(released: Released) -> Iterator[str]:
    server = start_server(released.project, released.port)
    yield server.url
    server.stop()


#: the base provides packages (repotool.media.provides): perfsonar-base-<profile>
BASE_PACKAGE_PREFIX = "perfsonar-base-"
#: the profile whose capabilities the test hosts' base repository provides
BASE_PROFILE = "debian12"
#: set by _base_repository_home: where the session's base repository is made
_BASE_REPOSITORY_HOME: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _base_repository_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    _BASE_REPOSITORY_HOME[:] = [tmp_path_factory.getbasetemp() / "base-repository"]


def base_repository() -> Path:
    """A yum repository holding the base provides package of BASE_PROFILE, made
    with the project's own build_base_provides (root=None: nothing to prove it
    against) and createrepo_c, once per session (per xdist worker)."""
    from repotool.media.provides import build_base_provides, load_profile
    from repotool.process import SubprocessRunner

    home = _BASE_REPOSITORY_HOME[0]
    folder = home / "repo"
    if not (folder / "repodata" / "repomd.xml").is_file():
        shutil.rmtree(home, ignore_errors=True)
        profile = load_profile(BASE_PROFILE)
        rpm = build_base_provides(
            SubprocessRunner(), profile, home / "rpms", epoch=1390867200, root=None
        )
        (folder / "Packages").mkdir(parents=True)
        shutil.copy2(rpm, folder / "Packages" / rpm.name)
        subprocess.run(["createrepo_c", "-q", str(folder)], check=True, timeout=120)
    return folder


class DnfHost:
    """A throwaway host: Debian's dnf in its own installroot, as a host admin runs it.

    The one dnf host of the tests: repositories come from .repo files
    (`add_repo_file`, or `add_local_repo` for a folder on disk).  Every host
    also has the base repository (`base_repository`), unless base=False."""

    def __init__(self, root: Path, *, base: bool = True) -> None:
        self.root = root / "root"
        self.reposdir = root / "repos.d"
        self.cachedir = root / "cache"
        for d in (self.root, self.reposdir, self.cachedir):
            d.mkdir(parents=True, exist_ok=True)
        if base:
            # what a CentOS host's base repositories give: the toolkit's real
            # Requires (a shell, openssl, httpd, ntp, iperf3 ...), as the
            # provides package of the Debian demo base, never skipped checks
            self.add_local_repo(base_repository(), name="base")

    def add_repo_file(self, text: str, name: str = "perfsonar.repo") -> None:
        (self.reposdir / name).write_text(text)

    def add_local_repo(self, folder: Path, *, name: str = "perfsonar") -> None:
        """A repository folder on disk, read without signature checks (file://)."""
        self.add_repo_file(
            f"[{name}]\nname=pS-Performance Toolkit test\nbaseurl={folder.resolve().as_uri()}\n"
            "gpgcheck=0\nrepo_gpgcheck=0\n",
            f"{name}.repo",
        )

    def _tmp(self) -> Path:
        tmp = self.root.parent / f"{self.root.name}-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def dnf(
        self, *args: str, releasever: str = "7", check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [
                "dnf",
                "-y",
                "--noplugins",
                f"--installroot={self.root}",
                f"--releasever={releasever}",
                f"--setopt=reposdir={self.reposdir}",
                f"--setopt=cachedir={self.cachedir}",
                "--setopt=install_weak_deps=False",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            # dnf's words as the tests read them; its throwaway GnuPG homes in our folder
            env={**os.environ, "LC_ALL": "C.UTF-8", "TMPDIR": str(self._tmp())},
        )
        # the gpg-agents of those homes outlive them (dnf does not stop them)
        stop_gpg_agents_in(self._tmp())
        if check:
            assert done.returncode == 0, f"dnf {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def installed(self, *, arch: bool = False) -> set[str]:
        """NAME-VERSION-RELEASE (with arch: .ARCH too) of every package but gpg keys
        and the base system's provides package (the host's, not the toolkit's)."""
        qf = "%{NAME}-%{VERSION}-%{RELEASE}" + (".%{ARCH}" if arch else "") + "\n"
        done = subprocess.run(
            ["rpm", "--root", str(self.root), "-qa", "--qf", qf],
            capture_output=True,
            text=True,
            check=True,
        )
        return {
            line
            for line in done.stdout.splitlines()
            if line and not line.startswith(("gpg-pubkey", BASE_PACKAGE_PREFIX))
        }


@pytest.fixture
def dnf_host(tmp_path: Path) -> DnfHost:
    return DnfHost(tmp_path / "host")


def make_gpg_key(
    home: Path,
    uid: str,
    *,
    algo: str = "rsa2048",
    expire: str = "0",
    passphrase_file: Path | None = None,
    faked_time: str | None = None,
) -> str:
    """A real signing key made with gpg in GNUPGHOME home (which may hold others);
    returns its fingerprint."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = ["gpg", "--homedir", str(home), "--batch", "--status-fd", "1"]
    if passphrase_file is not None:
        argv += ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)]
    else:
        argv += ["--passphrase", ""]
    if faked_time is not None:
        argv += ["--faked-system-time", faked_time]
    status = subprocess.run(
        [*argv, "--quick-gen-key", uid, algo, "sign", expire],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return next(
        ln.split()[3] for ln in status.splitlines() if ln.startswith("[GNUPG:] KEY_CREATED ")
    )


def export_public_key(home: Path, who: str) -> bytes:
    """The armored public key of `who` (fingerprint or uid) in home."""
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--armor", "--export", who],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


def detach_sign(home: Path, who: str, data: Path, output: Path) -> Path:
    """An armored detached signature of data by `who`, written to output."""
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--local-user",
            who,
            "--armor",
            "--detach-sign",
            "--output",
            str(output),
            str(data),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return output


def build_rpms(
    specs: dict[str, str], top: Path, *, env: dict[str, str] | None = None
) -> list[Path]:
    """rpmbuild -bb each spec text (name -> text) in the _topdir top; the RPMs made."""
    top.mkdir(parents=True, exist_ok=True)
    for name, text in specs.items():
        spec = top / f"{name}.spec"
        spec.write_text(text)
        done = subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
        )
        assert done.returncode == 0, f"rpmbuild {spec.name}: {done.stderr}"
    return sorted((top / "RPMS").rglob("*.rpm"))


def rpmsign(rpms: list[Path], home: Path, fingerprint: str) -> None:
    """rpmsign --addsign with the key in home, as a release signs."""
    subprocess.run(
        [
            "rpmsign",
            "--addsign",
            "--define",
            "__gpg /usr/bin/gpg",
            "--define",
            f"_gpg_name {fingerprint}",
            *map(str, rpms),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "GNUPGHOME": str(home)},
    )


def createrepo(folder: Path, *, revision: int | None = None) -> Path:
    """createrepo_c metadata for the RPMs under folder (the revision also stamps the
    files' timestamps); returns repodata/repomd.xml."""
    extra = [] if revision is None else ["--revision", str(revision), "--set-timestamp-to-revision"]
    subprocess.run(
        ["createrepo_c", "--quiet", *extra, str(folder)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder / "repodata" / "repomd.xml"


def use_production_key(
    project: Path, fingerprint: str, home: Path, passphrase_file: Path | None = None
) -> None:
    """Point the project's repotool.toml at a production key."""
    toml = project / "repotool.toml"
    extra = f'\npassphrase_file = "{passphrase_file}"' if passphrase_file else ""
    toml.write_text(
        toml.read_text().replace(
            'mode = "development"',
            f'mode = "production"\nfingerprint = "{fingerprint}"\ngnupghome = "{home}"{extra}',
        )
    )


def gpgv_check(public_key: Path, signature: Path, data: Path, scratch: Path) -> str:
    """What a reader does: gpgv against a keyring of the published key only.
    Returns gpgv's report; fails the test when the signature does not verify."""
    keyring = scratch / "published.gpg"
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(scratch),
            "--batch",
            "--dearmor",
            "--output",
            str(keyring),
            str(public_key),
        ],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(signature), str(data)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr
