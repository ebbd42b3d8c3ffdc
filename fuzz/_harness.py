"""What the harnesses share: a scratch directory for the files they write, and the atheris
entry point (atheris is imported only there, so the ``check`` functions run without it)."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_SCRATCH: Path | None = None


def scratch(name: str, data: bytes) -> Path:
    """Write ``data`` to ``name`` in this process's scratch directory (removed at exit)."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="hashmatch-fuzz-"))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


def _instrument_hashmatch() -> None:
    """Add atheris's coverage to hashmatch's Python functions (the ones already imported):
    ``atheris.instrument_imports`` misses modules loaded by an editable install's finder, and
    ``atheris.instrument_all`` also does numpy's, which takes half a minute."""
    import gc
    import types

    import atheris  # type: ignore[import-untyped, unused-ignore]

    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith("hashmatch"):
            with contextlib.suppress(Exception):
                atheris.instrument_func(obj)


def main(check: Callable[[bytes], None]) -> None:
    """Fuzz ``check`` with atheris (libFuzzer's flags and corpus directories in argv)."""
    try:
        import atheris  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        print(
            "atheris is not installed (pip install atheris; it has wheels for CPython on"
            " Linux and macOS): cannot fuzz",
            file=sys.stderr,
        )
        sys.exit(2)
    _instrument_hashmatch()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
