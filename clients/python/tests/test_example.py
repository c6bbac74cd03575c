"""examples/movielens.py: on MovieLens-100K when ../shared/data has it (a short run: --quick), and the message it
gives when the data is absent."""

import os
import subprocess
import sys

import pytest

from conftest import PKG_ROOT, REPO

EXAMPLE = os.path.join(PKG_ROOT, "examples", "movielens.py")
DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "ml-100k"))


def run(*args):
    return subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not os.path.exists(os.path.join(DATA, "u.data")), reason=f"MovieLens-100K not at {DATA}")
def test_movielens_example_quick():
    r = run("--quick", "--data", DATA)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "ratings by 200 users" in out
    hr = float(out.split("HR@10 ")[1].split()[0])
    assert 0.02 < hr < 0.5, out  # far above random (10 / ~1500 items), below the impossible
    recs = [line for line in out.splitlines() if line.startswith("  ") and ". " in line[:6]]
    assert len(recs) == 15 and all("because you rated ‘" in line for line in recs), out
    assert "movies like Star Wars (1977): " in out


def test_movielens_example_without_data(tmp_path):
    r = run("--data", str(tmp_path / "absent"))
    assert r.returncode == 0
    assert "MovieLens-100K is not at" in r.stdout and "absent" in r.stdout
