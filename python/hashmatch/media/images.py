"""Hashing images: :func:`hash_image`, one source or a batch.

Sources are read with Pillow and hashed with ``pdqhash`` (Meta's PDQ C++ behind a Cython
binding) or ``imagehash`` (pHash, dHash, average hash, wavelet hash); hashmatch writes no
hasher of its own. The bits are packed as hashmatch packs every hash: bit 0 is the most
significant bit of byte 0, so ``hm.to_hex(codes)`` is the hex text Meta's tools and
ThreatExchange print for PDQ, and ``str(imagehash_object)`` for the others.

PDQ hashes as python-threatexchange and HMA do (``pdqhash`` over the full picture): the picture
is converted to RGB and hashed from luma ``0.299 R + 0.587 G + 0.114 B``, so hashes are
identical to theirs. ``max_side=512`` first reduces a larger picture to fit in 512 x 512
(keeping its aspect ratio, Pillow's ``thumbnail``, as Meta's pure-Python reference hasher
does): 10-30x faster on multi-megapixel photos, at a few bits from the full-size hash (4-14
on scikit-image's photos upscaled 4x). A picture under 5 pixels on a side is refused
(vPDQ's minimum). The EXIF orientation tag is not applied: the stored pixels
are hashed, as the reference hashers do; ``dihedral=True`` covers rotated copies.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from hashmatch._validation import _imagehash_codes, check_threads
from hashmatch.codes import to_hex
from hashmatch.dihedral import TRANSFORMS
from hashmatch.errors import HashmatchError, InvalidArgument, InvalidType, MediaError
from hashmatch.hashtypes import MISSING_QUALITY, hash_type
from hashmatch.progress import bar

from . import borders
from ._deps import require

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "IMAGE_KINDS",
    "HashFailure",
    "HashedImage",
    "HashedImages",
    "hash_image",
]

IMAGE_KINDS = ("pdq", "phash", "dhash", "ahash", "whash")
DIHEDRAL_METHODS = ("dct", "pixels")
"""The kinds :func:`hash_image` computes (names of :data:`hashmatch.HASH_TYPES`)."""

PDQ_MIN_SIDE = 5
"""PDQ: the smallest width and height hashed (vPDQ's ``MIN_HASHABLE_DIM``)."""

_IMAGEHASH_FUNCTIONS = {
    "phash": "phash",
    "dhash": "dhash",
    "ahash": "average_hash",
    "whash": "whash",
}
_WINDOW_PER_THREAD = 8  # batch items in flight per thread: bounded memory for any batch size

Codes = npt.NDArray[np.uint8]


class HashedImage(NamedTuple):
    """The hash of one image, from :func:`hash_image` given one source.

    Unpacks as ``codes, quality = hm.hash_image(path)``.

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 ``(nbytes,)``: the packed hash (32 bytes for PDQ, 8 for the 64-bit kinds); with
        ``dihedral=True`` ``(8, nbytes)``, the variants in the order of
        :data:`hashmatch.TRANSFORMS`.
    quality : int or None
        PDQ's quality, 0-100 (its users skip hashes below 50); None for kinds without one.
    """

    codes: Codes
    quality: int | None

    @property
    def hex(self) -> str | list[str]:
        """The hash as lowercase hex (a list of 8 with ``dihedral=True``)."""
        return to_hex(self.codes)


class HashFailure(NamedTuple):
    """A source of a batch that could not be hashed.

    Attributes
    ----------
    item : int
        Its position in the batch.
    source : str
        The path given, or a description (``<bytes: 0 bytes>``, ``<PIL image 10x10 RGB>``).
    reason : str
        Why (``empty file``, ``not an image Pillow can read: ...``, ``truncated: ...``).
    """

    item: int
    source: str
    reason: str


@dataclass(frozen=True, eq=False)
class HashedImages:
    """The hashes of a batch of images, from :func:`hash_image` given many sources.

    Rows are the sources that could be hashed, in input order; the others are in `failures`.

    Attributes
    ----------
    kind : str
        The hash kind (``"pdq"``, ``"phash"``...).
    codes : numpy.ndarray
        uint8 ``(n, nbytes)``, or ``(n, 8, nbytes)`` with ``dihedral=True`` (variants in the
        order of :data:`hashmatch.TRANSFORMS`): ready for ``index.range_search(codes, 31)``,
        ``index.range_search(codes, 31, dihedral=True)`` or ``HashList.add``.
    qualities : numpy.ndarray
        int16 ``(n,)``: PDQ quality 0-100, -1 for kinds without one (hashmatch's rule for a
        missing quality; ``matcher.match(..., qualities=...)`` and ``HashList.add(...,
        quality=...)`` take it as is).
    items : numpy.ndarray
        int64 ``(n,)``: the position in the batch of each row's source.
    sources : list of (str or None)
        The path of each row's source (None for bytes, arrays and Pillow images).
    failures : list of HashFailure
        The sources that could not be hashed, in input order.
    """

    kind: str
    codes: Codes
    qualities: npt.NDArray[np.int16]
    items: npt.NDArray[np.int64]
    sources: list[str | None]
    failures: list[HashFailure]

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def hex(self) -> list[str] | list[list[str]]:
        """The hashes as lowercase hex (a list of 8 per row with ``dihedral=True``)."""
        if self.codes.ndim == 3:
            return [cast(list[str], to_hex(stack)) for stack in self.codes]
        return cast(list[str], to_hex(self.codes))


def hash_image(
    source: object,
    *,
    kind: str = "pdq",
    dihedral: bool = False,
    dihedral_method: str = "dct",
    crop_borders: bool = False,
    max_side: int | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> Any:
    """Hash an image (or a batch of images) with PDQ, pHash, dHash, aHash or wHash.

    Parameters
    ----------
    source : path, bytes, PIL.Image.Image, numpy.ndarray, or an iterable of them
        One image: a file path (str or path-like), the bytes of an image file, a Pillow
        image, or a uint8 array ``(h, w)`` (grey), ``(h, w, 3)`` (RGB) or ``(h, w, 4)``
        (RGBA; alpha is dropped). Many: a list (or any iterable) of these.
    kind : {"pdq", "phash", "dhash", "ahash", "whash"}, optional
        The hash: Meta's PDQ (256 bits, with a 0-100 quality) or imagehash's 64-bit
        ``phash``, ``dhash``, ``average_hash``, ``whash`` (no quality).
    dihedral : bool, optional
        Also hash the image rotated and mirrored: 8 variants per image, in the order of
        :data:`hashmatch.TRANSFORMS` (variant ``i`` is the hash of the image transformed by
        Pillow's ``TRANSFORMS[i]``). PDQ computes all 8 from one DCT (pdqhash's
        ``compute_dihedral``: Meta's dihedral hasher); the other kinds hash the 8 transposed
        images. Match them with ``index.range_search(codes, 31, dihedral=True)``.
    dihedral_method : {"dct", "pixels"}, optional
        PDQ with ``dihedral=True``: ``"dct"`` (default) derives the 8 variants from one DCT,
        as Meta's dihedral hasher and ``pdqhash.compute_dihedral`` do; ``"pixels"`` hashes
        each transformed picture (8x the hashing time). The one-DCT variants are close to,
        not equal to, the hashes of the transformed pictures: PDQ's downsampling is not
        symmetric, and on real photos a rotation's variant is up to ~24 bits from the hash
        of the rotated picture (mirrors: 0-18), distance that a re-encoded rotated upload
        then lacks (``benchmarks/RESULTS.md``). ``"pixels"`` is exact per transform.
    crop_borders : bool, optional
        Hash only what is inside uniform borders (letterbox or pillarbox bars; see
        :mod:`hashmatch.media.borders`). Hash uploads both ways to match lists banked either
        way (see :mod:`hashmatch.media`).
    max_side : int, optional
        PDQ only: first reduce a picture larger than this on a side to fit (Pillow's
        ``thumbnail``; 512 is Meta's pure-Python reference). Faster on large photos, a few
        bits from the full-size hash. Default: hash the full picture, exactly as
        python-threatexchange and HMA do.
    threads : int, optional
        Batch only: worker threads (default: every core). Pillow releases the GIL while it
        decodes and resizes; pdqhash and imagehash hold it while they hash, so threads
        overlap decoding with hashing rather than hashing in parallel.
    progress : bool, optional
        Batch only: show a progress bar on stderr.

    Returns
    -------
    HashedImage or HashedImages
        For one source, ``(codes, quality)``; for many, the hashes of those that could be
        hashed and the failures of the others (a bad source never stops a batch).

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError
        One source: a path that cannot be opened.
    MediaError
        One source: an empty file, data that is not an image, a truncated image, an image
        over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 2x for an
        error), a PDQ image under 5 pixels on a side.
    InvalidType
        A source of another type; an array not uint8.
    InvalidArgument
        A bad `kind` (``"vpdq"``: use :func:`hash_video`), an array of a bad shape.
    ModuleNotFoundError
        When the ``media`` extra is not installed (``pip install "hashmatch[media]"``).

    Examples
    --------
    >>> import numpy as np
    >>> picture = (np.arange(64 * 48 * 3).reshape(48, 64, 3) % 251).astype(np.uint8)
    >>> codes, quality = hm.hash_image(picture)
    >>> codes.shape, codes.dtype, 0 <= quality <= 100
    ((32,), dtype('uint8'), True)
    >>> hm.hash_image(picture, kind="phash").quality is None
    True
    >>> batch = hm.hash_image([picture, b"not an image"], dihedral=True)
    >>> batch.codes.shape, batch.items.tolist(), batch.failures[0].reason[:13]
    ((1, 8, 32), [0], 'not an image ')
    """
    kind = _check_kind(kind)
    dihedral = check_flag(dihedral, "dihedral")
    if dihedral_method not in DIHEDRAL_METHODS:
        raise InvalidArgument(
            f"dihedral_method: expected one of {', '.join(DIHEDRAL_METHODS)}, got"
            f" {dihedral_method!r}"
        )
    crop_borders = check_flag(crop_borders, "crop_borders")
    pil = require("PIL.Image", for_="hash_image")
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < PDQ_MIN_SIDE
    ):
        raise InvalidArgument(
            f"max_side: expected None or an int >= {PDQ_MIN_SIDE}, got {max_side!r}"
        )
    hasher = _Hasher(kind, dihedral, crop_borders, max_side, dihedral_method == "pixels")
    if _is_single(source, pil):
        codes, quality = hasher(source, "source")
        return HashedImage(codes, None if quality < 0 else quality)
    if isinstance(source, (Mapping, Set)) or not isinstance(source, Iterable):
        raise InvalidType(
            f"source: expected a path, bytes, a PIL image, a uint8 array or an iterable of"
            f" them, got {type(source).__name__}"
        )
    return _batch(source, hasher, check_threads(threads), bool(progress))


# ---------------------------------------------------------------------- checking arguments


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str):
        raise InvalidType(f"kind: expected a str, got {type(kind).__name__}")
    name = kind.lower()
    if name not in IMAGE_KINDS:
        hint = ": use hash_video for videos" if name == "vpdq" else ""
        raise InvalidArgument(f"kind: expected one of {', '.join(IMAGE_KINDS)}, got {kind!r}{hint}")
    return name


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidType(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _is_single(source: object, pil: Any) -> bool:
    return isinstance(
        source, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, pil.Image)
    )


def describe(source: object) -> str:
    """A source as error messages and failure lists show it: a path as given, else a summary."""
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{memoryview(source).nbytes:,} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {source.shape}>"
    size = getattr(source, "size", None)
    mode = getattr(source, "mode", None)
    if isinstance(size, tuple) and isinstance(mode, str):
        return f"<PIL image {size[0]}x{size[1]} {mode}>"
    return f"<{type(source).__name__}>"


# ------------------------------------------------------------------------- opening a source


def open_image(source: object, name: str = "source") -> PILImage.Image:
    """A source as a loaded Pillow image (pixels decoded), or the error that says why not.

    Files and bytes are decoded here, so every decoding failure (not an image, truncated,
    a decompression bomb) surfaces as :class:`MediaError` and nothing is decoded later.
    """
    pil = require("PIL.Image", for_="hash_image")
    if isinstance(source, pil.Image):
        try:
            source.load()
        except Exception as error:
            raise _decode_error(error, name, describe(source)) from error
        loaded: PILImage.Image = source
        return loaded
    if isinstance(source, np.ndarray):
        return _from_array(source, name, pil)
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        with open(path, "rb") as file:  # OSError (missing, a directory, no permission) as is
            if os.fstat(file.fileno()).st_size == 0:
                raise media_error(name, path, "empty file (0 bytes), not an image")
            return _decode(file, name, path, pil)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise media_error(name, describe(source), "empty (0 bytes), not an image")
        return _decode(io.BytesIO(data), name, describe(source), pil)
    raise InvalidType(
        f"{name}: expected a path, bytes, a PIL image or a uint8 array, got {type(source).__name__}"
    )


def _decode(file: Any, name: str, where: str, pil: Any) -> PILImage.Image:
    try:
        image: PILImage.Image = pil.open(file)
        image.load()
    except Exception as error:  # Pillow's plugins raise OSError, ValueError, SyntaxError...
        raise _decode_error(error, name, where) from error
    return image


def _decode_error(error: Exception, name: str, where: str) -> MediaError:
    """Pillow's exception as a MediaError whose message says what is wrong in plain words."""
    pil = require("PIL.Image", for_="hash_image")
    text = str(error) or type(error).__name__
    if isinstance(error, pil.DecompressionBombError):
        reason = (
            f"decompression bomb: {text} (raise PIL.Image.MAX_IMAGE_PIXELS to hash it if it is"
            " trusted)"
        )
    elif isinstance(error, pil.UnidentifiedImageError):
        reason = "not an image Pillow can read"
    elif "truncated" in text or isinstance(error, EOFError):
        reason = f"truncated image ({text})"
    else:
        reason = f"cannot decode the image ({type(error).__name__}: {text})"
    return media_error(name, where, reason)


def media_error(name: str, where: str, reason: str) -> MediaError:
    """``MediaError("name: where: reason")``, with ``reason`` also kept as an attribute (what a
    batch reports beside the source)."""
    return MediaError(f"{name}: {where}: {reason}", reason)


def _from_array(array: npt.NDArray[Any], name: str, pil: Any) -> PILImage.Image:
    if array.dtype != np.uint8:
        raise InvalidType(f"{name}: expected a uint8 image array, got {array.dtype}")
    shape = array.shape
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 3, 4))):
        raise InvalidArgument(
            f"{name}: expected an image array of shape (h, w), (h, w, 3) or (h, w, 4), got {shape}"
        )
    if array.size == 0:
        raise media_error(name, describe(array), "expected a non-empty image")
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    image: PILImage.Image = pil.fromarray(np.ascontiguousarray(array))
    return image


# ------------------------------------------------------------------------------------ hashing


class _Hasher:
    """Hashes one source: open, crop, hash; returns ``(codes, quality or -1)``."""

    def __init__(
        self,
        kind: str,
        dihedral: bool,
        crop_borders: bool,
        max_side: int | None,
        pixel_variants: bool = False,
    ) -> None:
        self.kind = kind
        self.dihedral = dihedral
        self.pixel_variants = pixel_variants
        self.crop_borders = crop_borders
        self.max_side = max_side
        self.nbytes = (hash_type(kind).bits or 0) // 8
        if kind == "pdq":
            self._pdqhash = require("pdqhash", for_="hash_image(kind='pdq')")
        else:
            module = require("imagehash", for_=f"hash_image(kind={kind!r})")
            self._imagehash: Callable[[Any], Any] = getattr(module, _IMAGEHASH_FUNCTIONS[kind])

    def __call__(self, source: object, name: str) -> tuple[Codes, int]:
        image = open_image(source, name)
        if self.kind == "pdq":
            return self._pdq(image, name, source)
        return self._other(image)

    def _pdq(self, image: PILImage.Image, name: str, source: object) -> tuple[Codes, int]:
        rgb = image.convert("RGB") if image.mode != "RGB" else image
        if self.max_side is not None and max(rgb.size) > self.max_side:
            rgb = rgb.copy() if rgb is image else rgb  # never change the caller's image
            rgb.thumbnail((self.max_side, self.max_side))
        pixels = np.asarray(rgb)
        if self.crop_borders:
            pixels = crop(pixels)
        height, width = pixels.shape[:2]
        if min(height, width) < PDQ_MIN_SIDE:
            raise media_error(
                name,
                describe(source),
                f"too small: expected at least {PDQ_MIN_SIDE}x{PDQ_MIN_SIDE} pixels to hash"
                f" with PDQ, got {width}x{height}",
            )
        if self.dihedral and self.pixel_variants:
            return pdq_pixel_variants(self._pdqhash, pixels)
        return pdq_codes(self._pdqhash, pixels, self.dihedral)

    def _other(self, image: PILImage.Image) -> tuple[Codes, int]:
        if self.crop_borders:
            box = borders.find_content(np.asarray(image.convert("L")))
            if box is not None:
                image = image.crop(box)
        if not self.dihedral:
            return _imagehash_codes([self._imagehash(image)], "codes", None, single=True)[
                0
            ], MISSING_QUALITY
        pil = require("PIL.Image", for_="hash_image")
        # TRANSFORMS are named as Pillow's Transpose members (checked in the tests)
        variants = [image] + [image.transpose(pil.Transpose[t.upper()]) for t in TRANSFORMS[1:]]
        hashes = [self._imagehash(variant) for variant in variants]
        return _imagehash_codes(hashes, "codes", None, single=False), MISSING_QUALITY


def crop(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``pixels`` inside their uniform borders (see :mod:`hashmatch.media.borders`)."""
    box = borders.find_content(pixels)
    if box is None:
        return pixels
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


def pdq_codes(pdqhash: Any, rgb: npt.NDArray[np.uint8], dihedral: bool) -> tuple[Codes, int]:
    """PDQ of an ``(h, w, 3)`` RGB array: packed codes ``(32,)`` (or ``(8, 32)``) and quality.

    pdqhash returns the 256 bits as 0/1 with the most significant first (the first hex digit
    of Meta's text is bits 0-3), so ``np.packbits`` gives hashmatch's packing. It reads the
    array's memory as C-contiguous whatever its strides: a crop or a Fortran-ordered array is
    copied first.
    """
    rgb = np.ascontiguousarray(rgb)
    if dihedral:
        variants, quality = pdqhash.compute_dihedral(rgb)
        bits = np.stack(variants).astype(np.uint8)
    else:
        vector, quality = pdqhash.compute(rgb)
        bits = np.asarray(vector).astype(np.uint8)
    return np.packbits(bits, axis=-1), int(quality)


PIXEL_TRANSFORMS: dict[str, Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.uint8]]] = {
    "original": lambda a: a,
    "rotate_90": lambda a: np.rot90(a, 1),
    "rotate_180": lambda a: np.rot90(a, 2),
    "rotate_270": lambda a: np.rot90(a, 3),
    "flip_top_bottom": lambda a: a[::-1],
    "flip_left_right": lambda a: a[:, ::-1],
    "transpose": lambda a: a.swapaxes(0, 1),
    "transverse": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}
"""Each of :data:`hashmatch.TRANSFORMS` on an ``(h, w, ...)`` array (as Pillow's transpose)."""


def pdq_pixel_variants(pdqhash: Any, rgb: npt.NDArray[np.uint8]) -> tuple[Codes, int]:
    """The 8 dihedral variants as the PDQ hashes of the 8 transformed pictures, and the
    original's quality."""
    hashed = [pdq_codes(pdqhash, PIXEL_TRANSFORMS[name](rgb), False) for name in TRANSFORMS]
    return np.stack([codes for codes, _ in hashed]), hashed[0][1]


# -------------------------------------------------------------------------------- batches


def _batch(
    sources: Iterable[object], hasher: _Hasher, threads: int, progress: bool
) -> HashedImages:
    """Hash every source on a thread pool, in input order, collecting the failures."""
    total = len(sources) if hasattr(sources, "__len__") else None  # type: ignore[arg-type]
    codes: list[Codes] = []
    qualities: list[int] = []
    items: list[int] = []
    paths: list[str | None] = []
    failures: list[HashFailure] = []

    def one(index: int, source: object) -> tuple[Codes, int] | HashFailure:
        try:
            return hasher(source, f"source[{index}]")
        except (HashmatchError, OSError) as error:
            return HashFailure(index, describe(source), _reason(error))

    numbered = enumerate(sources)
    with bar(total, "hashing images", "image", enabled=progress) as progress_bar:
        for index, source, result in _in_order(one, numbered, threads):
            progress_bar.update(1)
            if isinstance(result, HashFailure):
                failures.append(result)
                continue
            codes.append(result[0])
            qualities.append(result[1])
            items.append(index)
            paths.append(os.fsdecode(source) if isinstance(source, (str, os.PathLike)) else None)
    shape = (8, hasher.nbytes) if hasher.dihedral else (hasher.nbytes,)
    return HashedImages(
        kind=hasher.kind,
        codes=np.stack(codes) if codes else np.zeros((0, *shape), np.uint8),
        qualities=np.array(qualities, dtype=np.int16),
        items=np.array(items, dtype=np.int64),
        sources=paths,
        failures=failures,
    )


def _reason(error: BaseException) -> str:
    """Why a source failed, without the argument and source its message starts with."""
    if isinstance(error, MediaError):
        return error.reason
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _in_order(
    work: Callable[[int, object], Any], numbered: Iterator[tuple[int, object]], threads: int
) -> Iterator[tuple[int, object, Any]]:
    """``work(index, source)`` over the items on ``threads`` threads, yielded in input order
    with a bounded number of items in flight."""
    if threads == 1:
        for index, source in numbered:
            yield index, source, work(index, source)
        return
    window = threads * _WINDOW_PER_THREAD
    with concurrent.futures.ThreadPoolExecutor(threads, "hashmatch-media") as pool:
        pending: collections.deque[tuple[int, object, concurrent.futures.Future[Any]]]
        pending = collections.deque()
        try:
            for index, source in numbered:
                pending.append((index, source, pool.submit(work, index, source)))
                if len(pending) >= window:
                    first, first_source, future = pending.popleft()
                    yield first, first_source, future.result()
            while pending:
                first, first_source, future = pending.popleft()
                yield first, first_source, future.result()
        finally:
            for _, _, future in pending:
                future.cancel()
