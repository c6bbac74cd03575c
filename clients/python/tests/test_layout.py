"""The ctypes mirrors in magpie/_lib.py against the C headers: a generated C program prints sizeof and offsetof
of every mirrored struct and field, and each must equal what ctypes computes. Also the enum constants the
package uses."""

import ctypes
import os
import shutil
import subprocess

import pytest

from conftest import REPO, plain_env
from magpie import _lib


def test_struct_layouts_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the build dependencies (build-essential)"
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "magpie/model.h"', '#include "magpie/eval.h"',
             '#include "magpie/split.h"', '#include "magpie/store.h"', "int main(void) {"]
    expected = []
    for cls, cname in _lib.LAYOUT + _lib.LAYOUT_PREFIX:
        prefix = (cls, cname) in _lib.LAYOUT_PREFIX
        if not prefix:
            lines.append(f'printf("sizeof {cname} %zu\\n", sizeof({cname}));')
            expected.append(f"sizeof {cname} {ctypes.sizeof(cls)}")
        for fname, _ in cls._fields_:
            lines.append(f'printf("offsetof {cname}.{fname} %zu\\n", offsetof({cname}, {fname}));')
            expected.append(f"offsetof {cname}.{fname} {getattr(cls, fname).offset}")
    consts = {"MP_NO_USER": _lib.NO_USER, "MP_ERROR_MSG_MAX": _lib.ERROR_MSG_MAX, "MP_EVAL_MAX_K": _lib.EVAL_MAX_K,
              "MP_EV_NTYPES": _lib.N_EVENT_TYPES, "MP_STORE_READONLY": _lib.STORE_READONLY}
    for name, value in consts.items():
        lines.append(f'printf("const {name} %llu\\n", (unsigned long long){name});')
        expected.append(f"const {name} {value}")
    lines.append(f'printf("sizeof interaction_dtype %zu\\n", sizeof(mp_interaction));')
    expected.append(f"sizeof interaction_dtype {_lib.INTERACTION_DTYPE.itemsize}")
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c11", "-I", os.path.join(REPO, "include"), "-o", str(exe), str(src)], check=True,
                   env=plain_env())
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True, env=plain_env()).stdout.splitlines()
    mismatches = [f"C: {g}  ctypes: {e}" for g, e in zip(got, expected) if g != e]
    assert len(got) == len(expected)
    assert not mismatches, "\n".join(mismatches)


def test_interaction_dtype_matches_ctypes():
    dt = _lib.INTERACTION_DTYPE
    for name, _ in _lib.mp_interaction._fields_:
        assert dt.fields[name][1] == getattr(_lib.mp_interaction, name).offset, name
