"""Build a benchmark's C helper with the system C compiler, once per source version, and load it.

The helpers are measuring instruments (bench/_fanout_recv.c: the load
client's receive loop), not part of the runtime: they are compiled into
``bench/.build/`` (not committed) the first time a benchmark needs them, named
by a hash of their source so an edited helper is rebuilt, and loaded with
ctypes, so no Python headers are needed.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess

__all__ = ["load", "NativeUnavailable"]

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, ".build")


class NativeUnavailable(RuntimeError):
    """No C compiler here, or the helper did not build: the benchmark says so and uses its Python path."""


def load(name: str) -> ctypes.CDLL:
    """``bench/<name>.c`` as a loaded shared library (built into bench/.build/ if needed)."""
    source = os.path.join(HERE, f"{name}.c")
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    target = os.path.join(BUILD, f"{name}-{digest}.so")
    if not os.path.exists(target):
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise NativeUnavailable(f"no C compiler (cc, gcc or $CC) to build bench/{name}.c")
        os.makedirs(BUILD, exist_ok=True)
        partial = f"{target}.{os.getpid()}.tmp"  # concurrent load processes: each builds its own, one wins
        built = subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", partial, source],
                               capture_output=True, text=True)
        if built.returncode != 0:
            raise NativeUnavailable(f"bench/{name}.c did not build:\n{built.stderr.strip()}")
        os.replace(partial, target)
    return ctypes.CDLL(target)
