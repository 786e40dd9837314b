"""A realistic package corpus for the publish benchmark, generated once and cached.

    .venv/bin/python bench/corpus.py --packages 10000

Sizes and file counts follow a distribution like EPEL's: package size
log-normal around 150 kB (most between 10 kB and 1 MB, a tail cut at 50 MB),
1 to 2,000 files per package, more files in larger packages.  The generator
is seeded, so package i is always the same: the first 1,000 of the 10,000 are
the 1,000-package corpus.

rpmbuild per package is far too slow for 10,000, so the packages are written
here: lead, signature header, main header (with its immutable region), a
gzip'd (stored, the data is random) cpio payload with real file digests, and a
v4 RSA/SHA-256 header signature made in-process with the bench key's secret
half (exported from its GnuPG home once; the bench key is a development key
with no passphrase).  They pass ``rpmkeys --checksig`` against the bench key,
``rpm -qp`` and createrepo_c; ``rpm2cpio`` unpacks them.  Not meant for dnf
install (no real dependencies).

Cached in bench/results/corpus-<key id>/ (gitignored) as Packages/*.rpm.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import random
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from repotool.signing.rpm_verify import _mpi, _packets  # noqa: E402

INT16, INT32, STRING, BIN, STRING_ARRAY, I18NSTRING = 3, 4, 6, 7, 8, 9
RPMLIB = 0x1000000 | 0x08 | 0x02  # RPMSENSE_RPMLIB | LESS | EQUAL
EPOCH_TIME = 1_700_000_000
POOL = random.Random(0).randbytes(4 << 20)  # file contents are slices of this


@dataclass(frozen=True)
class SigningKey:
    key_id: bytes
    fingerprint: bytes
    private: rsa.RSAPrivateKey


def load_signing_key(gnupghome: Path, fingerprint: str) -> SigningKey:
    """The bench key's RSA secret half, from gpg (unprotected development key)."""
    data = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(gnupghome),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--export-secret-keys",
            fingerprint,
        ],
        check=True,
        capture_output=True,
    ).stdout
    tag, body = _packets(data)[0]
    if tag != 5 or body[0] != 4 or body[5] != 1:
        raise SystemExit("the bench key must be a v4 RSA key")
    n, at = _mpi(body, 6)
    e, at = _mpi(body, at)
    public = body[:at]
    if body[at] != 0:
        raise SystemExit("the bench key's secret half is protected; cannot sign in-process")
    d, at = _mpi(body, at + 1)
    p, at = _mpi(body, at)
    q, at = _mpi(body, at)
    fpr = hashlib.sha1(b"\x99" + struct.pack(">H", len(public)) + public).digest()
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, n)
    )
    return SigningKey(fpr[-8:], fpr, numbers.private_key())


# --- headers -------------------------------------------------------------------------------


def _encode(typ: int, value: object) -> tuple[bytes, int, int]:
    """(data, count, alignment)"""
    if typ == INT32:
        vals = value if isinstance(value, list) else [value]
        return struct.pack(f">{len(vals)}I", *vals), len(vals), 4
    if typ == INT16:
        vals = value if isinstance(value, list) else [value]
        return struct.pack(f">{len(vals)}H", *vals), len(vals), 2
    if typ == STRING:
        return str(value).encode() + b"\0", 1, 1
    if typ in (STRING_ARRAY, I18NSTRING):
        vals = value if isinstance(value, list) else [value]
        return b"".join(str(v).encode() + b"\0" for v in vals), len(vals), 1
    if typ == BIN:
        assert isinstance(value, bytes)
        return value, len(value), 1
    raise ValueError(typ)


def header_blob(region: int, entries: list[tuple[int, int, object]]) -> bytes:
    """An rpm header (magic included) with an immutable region over all its tags."""
    entries = sorted(entries)
    nindex = len(entries) + 1
    index = []
    data = bytearray()
    for tag, typ, value in entries:
        raw, count, align = _encode(typ, value)
        data += b"\0" * (-len(data) % align)
        index.append(struct.pack(">iIiI", tag, typ, len(data), count))
        data += raw
    trailer_at = len(data)
    data += struct.pack(">iIiI", region, BIN, -nindex * 16, 16)
    index.insert(0, struct.pack(">iIiI", region, BIN, trailer_at, 16))
    return (
        b"\x8e\xad\xe8\x01\x00\x00\x00\x00"
        + struct.pack(">II", nindex, len(data))
        + b"".join(index)
        + bytes(data)
    )


def _cpio(names: list[str], sizes: list[int], salt: bytes, digests: list[str]) -> bytes:
    out = bytearray()

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, EPOCH_TIME, len(data), 0, 0, 0, 0, len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(nb)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        start = int.from_bytes(hashlib.sha256(salt + i.to_bytes(4, "big")).digest()[:4], "big")
        start %= len(POOL) - size - 32 if size + 32 < len(POOL) else 1
        data = (salt + POOL[start : start + size])[:size]
        while len(data) < size:  # larger than the pool: repeat it
            data += POOL[: size - len(data)]
        digests.append(hashlib.sha256(data).hexdigest())
        entry("." + name, 0o100644, data, i + 1)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


def _gzip_stored(data: bytes) -> bytes:
    """A gzip member with stored (level 0) blocks: valid, and fast for random data."""
    c = zlib.compressobj(0, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", EPOCH_TIME) + b"\x00\x03"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _signature(key: SigningKey, header: bytes) -> bytes:
    hashed = b"\x05\x02" + struct.pack(">I", EPOCH_TIME) + b"\x16\x21\x04" + key.fingerprint
    head = b"\x04\x00\x01\x08" + struct.pack(">H", len(hashed)) + hashed
    trailer = head + b"\x04\xff" + struct.pack(">I", len(head))
    digest = hashlib.sha256(header + trailer).digest()
    sig = key.private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    s = int.from_bytes(sig, "big")
    unhashed = b"\x09\x10" + key.key_id
    body = (
        head
        + struct.pack(">H", len(unhashed))
        + unhashed
        + digest[:2]
        + struct.pack(">H", s.bit_length())
        + sig.lstrip(b"\0")
    )
    return b"\x89" + struct.pack(">H", len(body)) + body


# --- the distribution ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    size: int  # payload bytes (files' contents)
    files: int


def shape(i: int, prefix: str = "corpus") -> Shape:
    rnd = random.Random(i * 7919 + 1)
    size = int(math.exp(rnd.gauss(math.log(150_000), 1.3)))
    size = max(8_000, min(size, 50_000_000))
    # larger packages tend to hold more files; at most 2,000
    files = int(math.exp(rnd.gauss(math.log(3 + size / 40_000), 1.0)))
    files = max(1, min(files, 2000, size // 64 or 1))
    return Shape(f"{prefix}{i:05d}", size, files)


def make_rpm(sh: Shape, key: SigningKey, version: str = "1.0", release: str = "1.el7") -> bytes:
    rnd = random.Random(sh.name)
    weights = [rnd.random() ** 3 + 0.01 for _ in range(sh.files)]
    total = sum(weights)
    sizes = [int(sh.size * w / total) for w in weights]
    ndirs = max(1, sh.files // 40)
    dirs = [f"/usr/share/{sh.name}/d{d}/" for d in range(ndirs)]
    dirindexes = [j % ndirs for j in range(sh.files)]
    basenames = [f"f{j}.dat" for j in range(sh.files)]
    names = [dirs[d] + b for d, b in zip(dirindexes, basenames, strict=True)]
    digests: list[str] = []
    cpio = _cpio(names, sizes, sh.name.encode(), digests)
    payload = _gzip_stored(cpio)
    n = sh.files
    nevr = f"{version}-{release}"
    main = header_blob(
        63,
        [
            (100, STRING_ARRAY, ["C"]),
            (1000, STRING, sh.name),
            (1001, STRING, version),
            (1002, STRING, release),
            (1004, I18NSTRING, f"{sh.name}: a generated bench package"),
            (1005, I18NSTRING, f"{sh.name}: generated by bench/corpus.py, {n} files."),
            (1006, INT32, EPOCH_TIME),
            (1007, STRING, "bench.localhost"),
            (1009, INT32, sum(sizes)),
            (1014, STRING, "MIT"),
            (1016, I18NSTRING, "Unspecified"),
            (1021, STRING, "linux"),
            (1022, STRING, "noarch"),
            (1028, INT32, sizes),
            (1030, INT16, [0o100644] * n),
            (1033, INT16, [0] * n),
            (1034, INT32, [EPOCH_TIME] * n),
            (1035, STRING_ARRAY, digests),
            (1036, STRING_ARRAY, [""] * n),
            (1037, INT32, [0] * n),
            (1039, STRING_ARRAY, ["root"] * n),
            (1040, STRING_ARRAY, ["root"] * n),
            (1044, STRING, f"{sh.name}-{nevr}.src.rpm"),
            (1047, STRING_ARRAY, [sh.name]),
            (1048, INT32, [RPMLIB, RPMLIB]),
            (1049, STRING_ARRAY, ["rpmlib(CompressedFileNames)", "rpmlib(PayloadFilesHavePrefix)"]),
            (1050, STRING_ARRAY, ["3.0.4-1", "4.0-1"]),
            (1064, STRING, "4.18.0"),
            (1095, INT32, [1] * n),
            (1096, INT32, list(range(1, n + 1))),
            (1097, STRING_ARRAY, [""] * n),
            (1112, INT32, [8]),
            (1113, STRING_ARRAY, [nevr]),
            (1116, INT32, dirindexes),
            (1117, STRING_ARRAY, basenames),
            (1118, STRING_ARRAY, dirs),
            (1124, STRING, "cpio"),
            (1125, STRING, "gzip"),
            (1126, STRING, "0"),
            (5011, INT32, 8),
            (5092, STRING_ARRAY, [hashlib.sha256(payload).hexdigest()]),
            (5093, INT32, 8),
        ],
    )
    sig = header_blob(
        62,
        [
            (268, BIN, _signature(key, main)),
            (273, STRING, hashlib.sha256(main).hexdigest()),
            (1000, INT32, len(main) + len(payload)),
            (1007, INT32, len(cpio)),
        ],
    )
    lead = (
        b"\xed\xab\xee\xdb\x03\x00\x00\x00\x00\x01"
        + f"{sh.name}-{nevr}".encode()[:65].ljust(66, b"\0")
        + b"\x00\x01\x00\x05"
        + b"\0" * 16
    )
    assert len(lead) == 96
    return lead + sig + b"\0" * (-len(sig) % 8) + main + payload


def rpm_name(sh: Shape, version: str = "1.0", release: str = "1.el7") -> str:
    return f"{sh.name}-{version}-{release}.noarch.rpm"


_KEY: SigningKey | None = None


def _write(args: tuple[int, Path]) -> int:
    i, folder = args
    assert _KEY is not None
    sh = shape(i)
    path = folder / rpm_name(sh)
    if not path.exists():
        tmp = folder / f".{path.name}.tmp"
        tmp.write_bytes(make_rpm(sh, _KEY))
        os.replace(tmp, path)
    return sh.size


def corpus(n: int, key: SigningKey, *, workers: int = 0) -> list[Path]:
    """The first n corpus packages (made once, kept); returns their paths."""
    global _KEY
    folder = RESULTS / f"corpus-{key.key_id.hex()}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / rpm_name(shape(i)) for i in range(n)]
    todo = [(i, folder) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"writing {len(todo)} corpus packages into {folder} ...", file=sys.stderr)
        t = time.perf_counter()
        _KEY = key
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers or os.cpu_count() or 1) as pool:
            total = sum(pool.imap_unordered(_write, todo, chunksize=8))
        print(
            f"  {total / 1e9:.2f} GB of payload in {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
        )
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--packages", type=int, default=10_000)
    ap.add_argument("--gnupghome", type=Path, default=RESULTS / "keycfg/state/gnupg")
    ap.add_argument("--fingerprint", default="")
    args = ap.parse_args()
    fpr = args.fingerprint or _only_key(args.gnupghome)
    paths = corpus(args.packages, load_signing_key(args.gnupghome, fpr))
    sizes = sorted(p.stat().st_size for p in paths)
    print(
        f"{len(paths)} packages, {sum(sizes) / 1e9:.2f} GB; median {sizes[len(sizes) // 2]:,} B,"
        f" p90 {sizes[len(sizes) * 9 // 10]:,} B, max {sizes[-1]:,} B"
    )
    return 0


def _only_key(home: Path) -> str:
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


if __name__ == "__main__":
    raise SystemExit(main())
