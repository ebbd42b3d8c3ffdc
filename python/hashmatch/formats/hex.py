"""The plain-hex dialect: one hash a line, or ``signal_type hash`` lines (python-threatexchange's
local file exchange writes ``pdq <hash>``; the type word is dropped). A first line of column
names (``hash``, ``"PDQ_hash"``, ``signal_type signal``...) is skipped."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from hashmatch.errors import HashFormatError, HashmatchError

from .limits import BATCH_WEIGHT, check_length
from .names import FIELD_OF, NOT_HEX, normalise
from .records import HashRecords

if TYPE_CHECKING:
    from .reader import HashReader

__all__ = ["batches", "write"]

_STEP = 128  # lines read at a time: a batch keeps within its weight (lines of a MiB: 128 MiB)


def _is_header(line: str) -> bool:
    """Whether a first data line is column names, such as ``hash`` or ``"PDQ_hash"``."""
    words = [normalise(word.strip("\"'")) for word in line.split()]
    return all(word in FIELD_OF or word == "signal_type" for word in words)


def batches(reader: HashReader, lines: Iterator[str]) -> Iterator[HashRecords | None]:
    """The entries of ``hash`` or ``signal_type hash`` lines, a batch at a time."""
    number = 0
    header_checked = False
    typed: bool | None = None  # 'signal_type hash' lines, decided by the first data line
    while texts := _batch(reader, lines, number):
        starts = list(range(number + 1, number + 1 + len(texts)))
        number += len(texts)
        if "" in texts or any(text.startswith("#") for text in texts):
            pairs = zip(texts, starts, strict=True)
            kept = [(t, n) for t, n in pairs if t and not t.startswith("#")]
            texts, starts = [t for t, _ in kept], [n for _, n in kept]
        if not header_checked and texts:
            header_checked = True
            reader.columns = {"hash": "column1"}
            if _is_header(texts[0]):
                texts, starts = texts[1:], starts[1:]
        if typed is None and texts:
            words = texts[0].split()
            typed = len(words) == 2 and NOT_HEX.search(words[0]) is not None
        errors: dict[int, HashmatchError] = {}
        if typed:
            parts = [text.split(maxsplit=2) for text in texts]  # a long line: 3 parts at most
            for i, words in enumerate(parts):
                if len(words) != 2:
                    errors[i] = HashFormatError(
                        f"{reader.path}:{starts[i]}: expected 'signal_type hash' like the"
                        f" first line, got {len(texts[i].split())} words"
                    )
                    if not reader.skip_invalid:
                        break  # the first bad line is raised: no need to look further
            texts = [words[-1] if len(words) == 2 else "" for words in parts]
        yield reader._records(texts, starts, {}, errors)


def _batch(reader: HashReader, lines: Iterator[str], number: int) -> list[str]:
    """The stripped lines of the next batch (``number`` lines were read before it): at most
    ``reader._batch_rows`` lines and :data:`BATCH_WEIGHT` characters; a line longer than
    ``max_line_chars`` raises."""
    size, limit = reader._batch_rows, reader.max_line_chars
    texts: list[str] = []
    weight = 0
    while len(texts) < size and weight < BATCH_WEIGHT:
        step = list(itertools.islice(lines, min(_STEP, size - len(texts))))
        if not step:
            break
        longest = max(map(len, step))
        if longest > limit:
            for k, line in enumerate(step):
                if len(line) > limit:
                    check_length(reader, len(line), line, number + len(texts) + k + 1)
        weight += longest * len(step)  # at most: long lines make small batches
        texts.extend(map(str.strip, step))
    reader._weight += weight
    return texts


def write(text: IO[str], hexes: list[str]) -> None:
    """One lowercase hash a line (LF), nothing else."""
    text.write("".join(h + "\n" for h in hexes))
