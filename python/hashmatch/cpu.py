"""Which SIMD kernel runs: CPU detection and the kernel switch.

The best kernel this CPU supports is chosen once at import. ``HASHMATCH_KERNEL=<name>`` in the
environment, or :func:`set_kernel` at run time, forces another one, e.g. ``scalar``, so tests can
check every kernel against the reference.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from hashmatch import _core
from hashmatch.errors import InvalidArgument, InvalidType

__all__ = ["available_kernels", "cpu_features", "set_kernel"]


def cpu_features() -> dict[str, Any]:
    """Report the detected CPU features and the kernel in use.

    Returns
    -------
    dict
        ``popcnt``, ``avx2``, ``avx512_vpopcntdq``, ``neon`` (bool), ``kernel`` (the name of the
        kernel in use) and ``available_kernels`` (every kernel this CPU can run, best first; the
        ``*_emulated`` ones are slow test paths for ISAs the CPU may lack).

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.cpu_features()["kernel"] in hm.available_kernels()
    True
    """
    return dict(_core.cpu_features())


def available_kernels() -> list[str]:
    """Names of the kernels this CPU can run, best first.

    Examples
    --------
    >>> import hashmatch as hm
    >>> "scalar" in hm.available_kernels()
    True
    """
    return list(_core.available_kernels())


def set_kernel(name: str) -> str:
    """Use the named kernel for every later call in this process.

    Parameters
    ----------
    name : str
        One of :func:`available_kernels`, or ``"auto"`` for the best one.

    Returns
    -------
    str
        The name of the kernel now in use.

    Examples
    --------
    >>> import hashmatch as hm
    >>> hm.set_kernel("scalar")
    'scalar'
    >>> hm.set_kernel("auto") == hm.available_kernels()[0]
    True
    """
    if not isinstance(name, str):
        raise InvalidType(f"name: expected a kernel name (str), got {type(name).__name__}")
    if name != "auto" and name not in _core.available_kernels():
        raise InvalidArgument(
            f"name: expected 'auto' or one of {_core.available_kernels()}, got {name!r}"
        )
    _core.set_kernel(name)
    return str(_core.active_kernel())


def _check_forced_kernel() -> None:
    forced = os.environ.get("HASHMATCH_KERNEL", "")
    if forced and forced != "auto" and forced not in _core.available_kernels():
        warnings.warn(
            f"HASHMATCH_KERNEL={forced!r} is not one of {_core.available_kernels()} on this CPU; "
            f"using {_core.active_kernel()!r}",
            RuntimeWarning,
            stacklevel=3,
        )
