"""Fixtures of the package's tests: the `magpie` binary of the build under test ($MAGPIE, default
build/magpie) and a small demo store it generates (300 users, 200 items, ~8.7k events)."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)  # clients/python
REPO = os.path.normpath(os.path.join(PKG_ROOT, "..", ".."))
sys.path.insert(0, PKG_ROOT)


def plain_env():
    """The environment for tools that are not the library under test (cc, pip): without the ASan preload."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


@pytest.fixture(scope="session")
def magpie_bin():
    path = os.environ.get("MAGPIE") or os.path.join(REPO, "build", "magpie")
    if not os.path.exists(path):
        pytest.fail(f"no magpie binary at {path}: build with `make` or set MAGPIE")
    return path


class Cli:
    def __init__(self, binary):
        self.binary = binary

    def __call__(self, *args, check=True):
        r = subprocess.run([self.binary, *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"magpie {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
        return r

    def json_lines(self, *args):
        return [json.loads(line) for line in self(*args).stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def cli(magpie_bin):
    return Cli(magpie_bin)


@pytest.fixture(scope="session")
def shop(cli, tmp_path_factory):
    """Path of a demo store (gen-demo, seed 13) with items, users and events imported."""
    d = tmp_path_factory.mktemp("shop")
    cli("gen-demo", "--out", d / "shop", "--users", 300, "--items", 200, "--seed", 13, "--quiet")
    db = d / "shop.db"
    for kind in ("items", "users", "events"):
        cli("import", kind, d / "shop" / f"{kind}.jsonl", "--db", db, "--quiet")
    return str(db)
