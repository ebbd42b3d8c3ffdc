"""The one progress-bar policy: tqdm's ``auto`` bar (a widget in notebooks, text elsewhere),
off by default in the library (``progress=False``), on in the command line, always on
standard error and never left behind once the work is done.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]

__all__ = ["Bar", "bar"]


class Bar(Protocol):
    """The part of a tqdm bar hashmatch uses."""

    def update(self, n: float = 1) -> bool | None: ...

    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...

    def __enter__(self) -> Bar: ...

    def __exit__(self, *exc: object) -> None: ...


def bar(total: float | None, desc: str, unit: str, *, enabled: bool) -> Bar:
    """A progress bar for ``total`` units (``None``: unknown), shown only when ``enabled``.

    Parameters
    ----------
    total : number or None
        How many units the work has, if known.
    desc : str
        What is being done ("reading shared.csv", "finding pairs").
    unit : str
        The unit counted ("B" is scaled as bytes).
    enabled : bool
        The caller's ``progress=`` argument; the command line passes True unless
        ``--no-progress`` (tqdm then still hides the bar when stderr is not a terminal).

    Examples
    --------
    >>> from hashmatch.progress import bar
    >>> with bar(3, "demo", "item", enabled=False) as b:
    ...     _ = b.update(3)
    """
    made: Bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        disable=None if enabled else True,
        leave=False,
        dynamic_ncols=True,
    )
    return made
