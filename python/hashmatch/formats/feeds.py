"""Exchange feeds: batches of created, updated and deleted records, as hash-sharing exchanges
(ThreatExchange, Tech Against Terrorism, StopNCII, NCMEC) serve them.

A :class:`FeedBatch` is what one pull of a feed gives: the entries created or updated
(``upserts``: :class:`~hashmatch.formats.HashRecords` keyed by the exchange's record id), the
keys of the records deleted, the feed's checkpoint after this batch (its cursor or last update
time, saved so a service resumes where it stopped) and the records set aside as malformed
(:class:`Rejected`: where, which key, why). ``HashList.apply`` applies a batch as one atomic,
idempotent refresh; the exchange dialects of :mod:`hashmatch.formats` read feeds into batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from hashmatch.errors import InvalidArgument, InvalidType

from .records import HashRecords

__all__ = ["FeedBatch", "Rejected"]


class Rejected(NamedTuple):
    """A record set aside: where it was (``path:line``, ``path[3]`` or ``records[3]``), its key
    when known, and the reason."""

    where: str
    key: str | None
    reason: str


@dataclass(frozen=True, eq=False)
class FeedBatch:
    """One batch of an exchange feed.

    Attributes
    ----------
    upserts : HashRecords
        Entries created or updated, each with a key (the exchange's record id); a key that is
        in the list already is an update of that entry.
    deletes : tuple of str
        Keys of the records deleted (unknown keys are no error: a deletion may arrive twice).
    checkpoint : str or None
        The feed's position after this batch (a cursor, a last-update time), stored with the
        list so the next pull starts there.
    rejected : tuple of Rejected
        Records that could not be read (lenient reading) or were refused (degenerate hashes).
    """

    upserts: HashRecords
    deletes: tuple[str, ...] = ()
    checkpoint: str | None = None
    rejected: tuple[Rejected, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.upserts, HashRecords):
            raise InvalidType(f"upserts: expected HashRecords, got {type(self.upserts).__name__}")
        keys = self.upserts.keys
        if len(self.upserts) and (keys is None or any(k is None for k in keys)):
            raise InvalidArgument("upserts: every created or updated record needs a key")
        deletes = tuple(self.deletes)
        for i, key in enumerate(deletes):
            if not isinstance(key, str) or not key:
                raise InvalidType(f"deletes[{i}]: expected a non-empty str key, got {key!r}")
        object.__setattr__(self, "deletes", deletes)
        if self.checkpoint is not None and not isinstance(self.checkpoint, str):
            raise InvalidType(
                f"checkpoint: expected a str or None, got {type(self.checkpoint).__name__}"
            )
        rejected = tuple(self.rejected)
        for i, r in enumerate(rejected):
            if not isinstance(r, Rejected):
                raise InvalidType(f"rejected[{i}]: expected Rejected, got {type(r).__name__}")
        object.__setattr__(self, "rejected", rejected)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)
