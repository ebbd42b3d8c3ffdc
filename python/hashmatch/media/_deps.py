"""The optional libraries media hashing needs, imported on first use.

``import hashmatch`` never imports Pillow, pdqhash, imagehash or PyAV; the first call that needs
one imports it here, and a missing one raises :class:`ModuleNotFoundError` saying which extra
installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]

_PACKAGES = {
    "PIL": "Pillow",
    "pdqhash": "pdqhash",
    "imagehash": "ImageHash",
    "av": "av (PyAV)",
}


def require(module: str, *, for_: str) -> ModuleType:
    """Import ``module`` (one of Pillow's ``PIL``, ``pdqhash``, ``imagehash``, ``av``).

    Parameters
    ----------
    module : str
        The module to import.
    for_ : str
        What needs it, for the error message (``"hash_image(kind='pdq')"``).

    Raises
    ------
    ModuleNotFoundError
        When it is not installed, naming the package and the ``media`` extra.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        package = _PACKAGES.get(module, module)
        raise ModuleNotFoundError(
            f'{for_} needs {package}, which is not installed: pip install "hashmatch[media]"',
            name=module,
        ) from error
