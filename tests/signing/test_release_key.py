"""The release key is judged before any work: weak, locked or expired keys are refused
with a message saying what to do, and nothing is built; strong keys sign."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repotool.signing.key_checks import KeyStrength, read_sign_status, weak_key_problem
from tests.conftest import make_gpg_key, make_project, run_repotool, use_production_key

COMPONENT = "perfsonar-toolkit-sysctl"


@dataclass(frozen=True)
class Key:
    home: Path
    fingerprint: str
    passphrase_file: Path | None = None


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def _expired_signing_subkey(home: Path) -> str:
    """A valid certify-only primary key whose only signing subkey expired in 2020."""
    home.mkdir(mode=0o700, parents=True)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
    old = ["--faked-system-time", "20200101T000000"]
    uid = "Subkey Expired <sub@example.invalid>"
    subprocess.run([*gpg, *old, "--quick-gen-key", uid, "rsa3072", "cert", "0"], check=True)
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "-K"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
    subprocess.run([*gpg, *old, "--quick-add-key", fpr, "rsa3072", "sign", "1d"], check=True)
    return fpr


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Key]]:
    """Real keys, each in its own GNUPGHOME, made once for the module."""
    base = tmp_path_factory.mktemp("keys")
    secret = base / "passphrase"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    made: dict[str, Key] = {}
    for name, algo in (
        ("rsa1024", "rsa1024"),
        ("dsa1024", "dsa1024"),
        ("rsa3072", "rsa3072"),
        ("ed25519", "ed25519"),
    ):
        home = base / name
        made[name] = Key(home, make_gpg_key(home, f"{name} <{name}@example.invalid>", algo=algo))
    home = base / "locked"
    fpr = make_gpg_key(home, "Locked <l@example.invalid>", algo="rsa3072", passphrase_file=secret)
    made["locked"] = Key(home, fpr, secret)
    made["expired-subkey"] = Key(base / "expsub", _expired_signing_subkey(base / "expsub"))
    for key in made.values():  # no passphrase cached from making the keys
        _kill_agent(key.home)
    yield made
    for key in made.values():
        _kill_agent(key.home)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "p", base_url="http://127.0.0.1:9")
    yield path
    _kill_agent(path / ".repotool" / "gnupg")


def _use(project: Path, key: Key, *, passphrase_file: Path | None = None, extra: str = "") -> None:
    use_production_key(project, key.fingerprint, key.home, passphrase_file)
    if extra:
        toml = project / "repotool.toml"
        toml.write_text(toml.read_text().replace("[key]\n", f"[key]\n{extra}\n", 1))


def _refused(project: Path, key: Key) -> str:
    """`repotool release` fails with status 5 before building or publishing anything."""
    done = run_repotool(project, "release", "--no-media")
    assert done.returncode == 5, done.stderr
    assert not (project / ".repotool" / "build-cache").exists()
    assert not (project / "public").exists()
    first = done.stderr.split("\n")[0]
    assert first.startswith(f"repotool: error: GNUPGHOME {key.home}"), done.stderr
    return done.stderr


@pytest.mark.parametrize(("name", "shown"), [("rsa1024", "RSA-1024"), ("dsa1024", "DSA-1024")])
def test_weak_keys_are_refused_before_any_work(
    keys: dict[str, Key], project: Path, name: str, shown: str
) -> None:
    key = keys[name]
    _use(project, key)
    err = _refused(project, key)
    assert (
        f"the signing key {key.fingerprint} is too weak: {shown} is weaker than RSA-3072 "
        "or Ed25519" in err
    )
    assert "set allow_weak_key = true in [key]" in err


def test_a_weak_key_signs_when_the_config_allows_it_and_says_so(
    keys: dict[str, Key], project: Path
) -> None:
    key = keys["rsa1024"]
    _use(project, key, extra="allow_weak_key = true")
    done = run_repotool(project, "build", COMPONENT, "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"SIGNING WITH A WEAK KEY ({key.fingerprint}): RSA-1024 is weaker" in done.stderr


@pytest.mark.parametrize("name", ["rsa3072", "ed25519"])
def test_strong_keys_sign_packages_that_check(
    keys: dict[str, Key], project: Path, name: str
) -> None:
    key = keys[name]
    _use(project, key)
    built = run_repotool(project, "build", COMPONENT, "--json", "--quiet")
    assert built.returncode == 0, built.stderr
    assert "WEAK" not in built.stderr and "DEVELOPMENT" not in built.stderr
    rpm = Path(json.loads(built.stdout)["packages"][0])
    signed = run_repotool(project, "sign", str(rpm), "--json", "--quiet")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["files"][0]["ok"]


def test_a_locked_key_without_its_passphrase_is_refused_before_any_work(
    keys: dict[str, Key], project: Path
) -> None:
    key = keys["locked"]
    _use(project, key)
    err = _refused(project, key)
    assert "the key needs a passphrase and none is configured" in err
    assert "[key] passphrase_file" in err


def test_a_wrong_passphrase_is_refused_before_any_work(
    keys: dict[str, Key], project: Path, tmp_path: Path
) -> None:
    key = keys["locked"]
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    _use(project, key, passphrase_file=wrong)
    err = _refused(project, key)
    assert f"the passphrase in {wrong} does not unlock the key" in err
    # the right one works
    _use_right = project / "repotool.toml"
    _use_right.write_text(_use_right.read_text().replace(str(wrong), str(key.passphrase_file)))
    done = run_repotool(project, "build", COMPONENT, "--quiet")
    assert done.returncode == 0, done.stderr


def test_an_expired_signing_subkey_is_refused_before_any_work(
    keys: dict[str, Key], project: Path
) -> None:
    key = keys["expired-subkey"]
    _use(project, key)
    err = _refused(project, key)
    assert "the key has no usable signing key: its signing subkey expired on 2020-01-02" in err
    assert "gpg --quick-set-expire" in err


# --- the pure decisions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("strength", "weak"),
    [
        (KeyStrength(1, 2048), "RSA-2048 is weaker than RSA-3072 or Ed25519"),
        (KeyStrength(1, 3072), None),
        (KeyStrength(1, 4096), None),
        (KeyStrength(17, 1024), "DSA-1024 is weaker than RSA-3072 or Ed25519"),
        (KeyStrength(22, 255, "ed25519"), None),
        (KeyStrength(19, 256, "nistp256"), None),
        (KeyStrength(19, 256, "secp256k1"), "ECDSA (secp256k1) is not known to be as strong"),
        (KeyStrength(16, 4096), "algorithm 16 (4096 bits) is not known to be as strong"),
    ],
)
def test_key_strength_policy(strength: KeyStrength, weak: str | None) -> None:
    problem = weak_key_problem(strength)
    assert problem == weak if weak is None else problem is not None and problem.startswith(weak)


def test_sign_status_reading() -> None:
    ok = "[GNUPG:] KEY_CONSIDERED AA 2\n[GNUPG:] SIG_CREATED D 22 8 00 1795908828 BBCC\n"
    assert read_sign_status(ok, passphrase_file=None).signed_by == "BBCC"
    nopin = "gpg: signing failed: No pinentry\n[GNUPG:] FAILURE sign 67108949\n"
    assert read_sign_status(nopin, passphrase_file=None).problem.startswith("the key needs")
    other = "gpg: signing failed: Something new\n[GNUPG:] FAILURE sign 67108999\n"
    out = read_sign_status(other, passphrase_file=None)
    assert out.signed_by is None and out.problem.endswith("signing failed: Something new")
