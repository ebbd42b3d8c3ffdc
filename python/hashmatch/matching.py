"""Matching uploads against several hash lists at once (:class:`Matcher`)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hashmatch._validation import check_dihedral, check_max_distance, check_threads
from hashmatch.errors import EntryNotFound, InvalidArgument, InvalidType
from hashmatch.hashtypes import hash_type as lookup_hash_type
from hashmatch.lists import HashList
from hashmatch.queries import Queries
from hashmatch.results import Match, MatchResult

__all__ = ["Match", "MatchResult", "Matcher"]


@dataclass(frozen=True)
class _Registered:
    hash_list: HashList
    max_distance: int


class Matcher:
    """Match query hashes against several hash lists, each with its own type and radius.

    Parameters
    ----------
    lists : mapping of str to HashList, optional
        Lists to register under these names, each at its own ``max_distance``.

    Notes
    -----
    Thread safety: ``match`` may run in any number of threads while lists are added, replaced
    or refreshed; each call sees one consistent set of lists (the one current when it
    started) and each list's current snapshot. Registration changes are serialised.

    Examples
    --------
    >>> import hashmatch as hm
    >>> db = hm.datasets.random_codes(3, 256, seed=7)
    >>> terror, csam = hm.HashList("pdq"), hm.HashList("pdq")
    >>> _ = terror.add(db[:2], keys=["t1", "t2"], labels=["terrorism"])
    >>> _ = csam.add(db[2:], keys=["c1"], labels=["csam"])
    >>> matcher = hm.Matcher({"terror": terror, "csam": csam})
    >>> queries = hm.datasets.flip_bits(db[[2, 0]], [5, 30])
    >>> result = matcher.match(queries, qualities=[90, 40], min_quality=50)
    >>> [(m.query, m.list, m.key, m.distance) for m in result]
    [(0, 'csam', 'c1', 5)]
    >>> result.skipped.tolist()
    [1]
    """

    def __init__(self, lists: Mapping[str, HashList] | None = None) -> None:
        self._lists: dict[str, _Registered] = {}
        self._lock = threading.Lock()
        if lists is not None and not isinstance(lists, Mapping):
            got = type(lists).__name__
            raise InvalidType(
                f"lists: expected a mapping of names to HashList (e.g. {{'terror': hash_list}}),"
                f" got {got}"
            )
        for name, hash_list in (lists or {}).items():
            self.add_list(name, hash_list)

    def add_list(self, name: str, hash_list: HashList, *, max_distance: int | None = None) -> None:
        """Register a list under ``name``, matched at ``max_distance`` (default: the list's)."""
        if not isinstance(name, str) or not name:
            raise InvalidType(f"name: expected a non-empty str, got {name!r}")
        with self._lock:
            if name in self._lists:
                raise InvalidArgument(f"name: a list named {name!r} is already registered")
            self._set(name, hash_list, max_distance)

    def replace(self, name: str, hash_list: HashList, *, max_distance: int | None = None) -> None:
        """Swap in another list under ``name`` atomically (e.g. one freshly loaded from disk);
        queries already running finish on the old one."""
        with self._lock:
            if name not in self._lists:
                raise EntryNotFound(f"name: no list named {name!r}")
            self._set(name, hash_list, max_distance)

    def remove_list(self, name: str) -> None:
        """Stop matching against the list ``name``."""
        with self._lock:
            if name not in self._lists:
                raise EntryNotFound(f"name: no list named {name!r}")
            lists = dict(self._lists)
            del lists[name]
            self._lists = lists

    def _set(self, name: str, hash_list: HashList, max_distance: int | None) -> None:
        if not isinstance(hash_list, HashList):
            raise InvalidType(f"hash_list: expected a HashList, got {type(hash_list).__name__}")
        radius = (
            hash_list.max_distance
            if max_distance is None
            else check_max_distance(max_distance, hash_list.bits)
        )
        lists = dict(self._lists)  # copy-on-write: readers keep the dict they took
        lists[name] = _Registered(hash_list, radius)
        self._lists = lists

    def __getitem__(self, name: str) -> HashList:
        try:
            return self._lists[name].hash_list
        except KeyError:
            raise EntryNotFound(f"name: no list named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._lists

    def __len__(self) -> int:
        return len(self._lists)

    @property
    def names(self) -> list[str]:
        """Names of the registered lists, in registration order."""
        return list(self._lists)

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{n}: {r.hash_list.hash_type} <= {r.max_distance} ({len(r.hash_list)})"
            for n, r in self._lists.items()
        )
        return f"Matcher({{{inner}}})"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its lists (each as its saved sections) and their radii."""
        return (_unpickle, ({n: (r.hash_list, r.max_distance) for n, r in self._lists.items()},))

    def match(
        self,
        hashes: object,
        *,
        hash_type: str | None = None,
        qualities: object = None,
        min_quality: float | None = None,
        groups: object = None,
        dihedral: bool = False,
        threads: int | None = None,
    ) -> MatchResult:
        """Match query hashes against every registered list of their hash type.

        Parameters
        ----------
        hashes : hashes
            Query hashes, all of one type.
        hash_type : str, optional
            Which lists to search. By default, the lists whose width equals the queries' (it
            must then be one hash type: a 64-bit pHash is not compared with a 64-bit dHash).
        qualities, min_quality, groups, dihedral, threads
            As in :meth:`HashList.match`: each query's quality (0-100), the threshold below
            which queries are skipped (listed in ``result.skipped``), each query's group
            (:meth:`MatchResult.by_group`), queries given as 8-variant stacks matched by
            their best variant (rotated and mirrored uploads, :mod:`hashmatch.dihedral`),
            and the threads to use (default every core).

        Returns
        -------
        MatchResult
        """
        registered = self._lists  # one consistent set of lists for the whole call
        nthreads = check_threads(threads)
        kinds = {n: (r.hash_list.hash_type, r.hash_list.bits) for n, r in registered.items()}
        queries, names = select_lists(
            kinds, hashes, hash_type, qualities, min_quality, groups, dihedral
        )
        chosen = [(n, registered[n]) for n in names]
        hits = [r.hash_list.hits(queries, r.max_distance, threads=nthreads) for _, r in chosen]
        return MatchResult.from_hits(
            [name for name, _ in chosen],
            hits,
            queries.total,
            queries.skipped,
            queries.groups,
            dihedral=queries.codes.ndim == 3,
        )

    def match_video(
        self,
        video: object,
        *,
        hash_type: str | None = None,
        min_quality: int = 50,
        dihedral: bool = False,
        threads: int | None = None,
    ) -> MatchResult:
        """Match every frame of a video against the registered lists of still images (PDQ):
        a frame of an upload that matches a banked image is a match.

        Parameters
        ----------
        video : frames
            A :class:`hashmatch.HashedVideo`, vPDQ frames read from a file, or ``(codes,
            qualities, timestamps)``.
        hash_type : str, optional
            Which lists to search, as in :meth:`match` (needed when both ``"pdq"`` and
            ``"vpdq"`` lists are registered).
        min_quality : int, default 50
            Frames of lower quality are not searched (listed in ``result.skipped``).
        dihedral : bool, default False
            The frames are 8-variant stacks (``hash_video(..., dihedral=True)``).
        threads : int, optional
            Threads to use.

        Returns
        -------
        MatchResult
            One record per (frame, entry); ``queries`` are the frames' positions in the
            video's frame arrays (not a decoder's frame numbers: see ``VideoFrames.frames``)
            and ``query_times`` the timestamps by position (``to_pandas()`` has a ``time``
            column).

        Examples
        --------
        >>> import numpy as np
        >>> images = hm.HashList("pdq", name="images")
        >>> banned = hm.datasets.random_codes(2, seed=4)
        >>> _ = images.add(banned, keys=["poster", "flag"])
        >>> frames = hm.datasets.random_codes(5, seed=5)
        >>> frames[3] = banned[1]  # the flag is shown at 3 s
        >>> result = hm.Matcher({"images": images}).match_video(
        ...     (frames, np.full(5, 90), np.arange(5.0)))
        >>> [(m.key, float(result.query_times[m.query])) for m in result]
        [('flag', 3.0)]
        """
        return match_frames(
            self.match,
            video,
            hash_type=hash_type,
            min_quality=min_quality,
            dihedral=dihedral,
            threads=threads,
        )


_Result = TypeVar("_Result", bound=MatchResult)


def match_frames(
    match: Callable[..., _Result], video: object, *, dihedral: bool = False, **options: Any
) -> _Result:
    """``match`` (:meth:`Matcher.match` or a sharded router's) of a video's frames: their
    qualities as the queries', and the result's ``query_times`` the frames' timestamps."""
    from hashmatch.videos import as_frames

    frames = as_frames(video, "video", dihedral=check_dihedral(dihedral))
    result = match(frames.codes, qualities=frames.qualities, dihedral=dihedral, **options)
    return dataclasses.replace(result, query_times=frames.timestamps)


def _unpickle(lists: dict[str, tuple[HashList, int]]) -> Matcher:
    matcher = Matcher()
    for name, (hash_list, radius) in lists.items():
        matcher.add_list(name, hash_list, max_distance=radius)
    return matcher


def select_lists(
    kinds: Mapping[str, tuple[str, int]],
    hashes: object,
    hash_type: str | None,
    qualities: object,
    min_quality: float | None,
    groups: object,
    dihedral: object,
) -> tuple[Queries, list[str]]:
    """Prepare query hashes against lists (``kinds``: name -> (hash type, bits), in
    registration order) and pick the lists they are matched against: those of ``hash_type``,
    or by default those of the queries' width, which must then be one hash type."""
    kind = None if hash_type is None else lookup_hash_type(hash_type).name
    if kind is not None and kind != "raw":
        nbytes: int | None = lookup_hash_type(kind).nbytes
    else:
        widths = {bits // 8 for t, bits in kinds.values() if kind is None or t == kind}
        nbytes = widths.pop() if len(widths) == 1 else None
    queries = Queries.prepare(
        hashes, nbytes, qualities, min_quality, groups, dihedral=check_dihedral(dihedral)
    )
    width = queries.width * 8
    chosen = [n for n, (t, bits) in kinds.items() if bits == width and kind in (None, t)]
    types = sorted({kinds[n][0] for n in chosen})
    if len(types) > 1:
        raise InvalidArgument(
            f"hash_type: {width}-bit queries could be any of {', '.join(types)}; "
            "pass hash_type= to say which lists to search"
        )
    return queries, chosen
