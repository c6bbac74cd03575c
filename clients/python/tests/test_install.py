"""`pip install ./clients/python` offline with Debian's setuptools (no build isolation, no index): the installed
package imports from the target directory, finds the library through MAGPIE_LIB and works; the HTTP client
module comes with it."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import PKG_ROOT, plain_env


@pytest.mark.skipif(bool(os.environ.get("MAGPIE_ASAN")), reason="packaging does not depend on the build: checked "
                    "in the release build's run, not again under ASan")
def test_pip_install_offline(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(PKG_ROOT, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info",
                                                                  ".hypothesis", "examples"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                        "--no-index", "--disable-pip-version-check", "--target", str(target), str(src)],
                       capture_output=True, text=True, env=plain_env())
    assert r.returncode == 0, r.stdout + r.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import magpie, magpie_client; print(magpie.__file__); print(magpie.library_path()); "
            "m = magpie.Model('pop'); print(sorted(magpie.models()))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(target))
    assert os.path.samefile(lines[1], os.environ["MAGPIE_LIB"]) if os.environ.get("MAGPIE_LIB") else lines[1]
    assert "als" in lines[2] and "pop" in lines[2]
