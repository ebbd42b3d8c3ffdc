"""Streaming import and export of hash-list files: plain hex, CSV and TSV.

Moderation teams exchange hash lists as plain text, one hex hash a line, or as CSV/TSV with a
hash column and metadata columns. :func:`read_hashes` streams such a file of any size in
chunks of parsed entries (:class:`HashRecords`); :func:`write_hashes` writes them back,
atomically, in a form :func:`read_hashes` reads back exactly.

Formats
-------
One module a dialect (``hex``, ``delimited`` for CSV and TSV, and ``threatexchange`` for the
column names and row shapes of python-threatexchange, HMA and the ThreatExchange UI), over one
reader core (``reader``: opening, format detection, strict checks) and one writer (``writer``).

``hex``
    One hash a line. A line may also be ``signal_type hash`` (python-threatexchange's local
    file exchange writes ``pdq <hash>`` lines); the type word is dropped.
``csv``, ``tsv``
    Parsed with the :mod:`csv` module (quoted fields may hold separators, quotes and line
    breaks). With a header line, columns are found by name (:data:`COLUMN_ALIASES`); without
    one, the first column is the hash, the second the key and any others are extras named
    ``column3``, ``column4``...; but a first row ``signal_type,hash,...`` whose first field
    is a hash-type name (``pdq,<hash>,...``, as ThreatExchange tools write) makes every row
    that shape: the type is the extra ``signal_type``, the hash second, the key third.

The format follows the extension (``.csv``; ``.tsv`` or ``.tab``; ``.hex``, and for writing
``.txt``; each optionally ``.gz``), else, when reading, the first data line (a tab: TSV, a
comma: CSV, else hex). Every format: a UTF-8 BOM is ignored, CRLF and LF line ends are
accepted, blank lines and lines starting with ``#`` (outside quoted fields) are skipped,
gzip-compressed files are recognised by their content, standard input (``-``) and pipes are
read, undecodable bytes become U+FFFD, and a hashmatch file (a saved index or list) is refused
with a pointer to :func:`hashmatch.load`. Hashes are checked strictly (hex digits only, one
width for the whole file), as :func:`hashmatch.from_hex` does, except that whitespace around a
hash is removed; errors name ``path:line`` and hint at a ``0x`` prefix or whitespace inside a
hash.

Exchanges
---------
python-threatexchange's entry lists are read by :func:`read_hashes` under their own names
(``pytx_csv``, ``pytx_local``, ``te_state``; ``pytx_csv`` is also written). The records of the
exchange APIs (ThreatExchange, Tech Against Terrorism, StopNCII, NCMEC), as JSON or JSON
lines, are read by :func:`read_feed` (:func:`parse_feed` for records already fetched) into a
:class:`FeedBatch` (:mod:`hashmatch.formats.feed_reader`, one module per exchange).
perception's base64 hashes are read by :func:`from_base64` and written by :func:`to_base64`.

vPDQ
----
A video's vPDQ frames (one PDQ hash, quality and timestamp per sampled frame) have their own
files: Meta's vpdq text lines and python-threatexchange's JSON, read by :func:`read_vpdq` and
written by :func:`write_vpdq` (:mod:`hashmatch.formats.vpdq`).

Columns
-------
``write_hashes`` writes the canonical names ``hash, id, key, labels, source, quality`` and
then the extras; ``read_hashes`` also accepts the names used by the peers' exports (header
names are compared case-insensitively, spaces and dashes read as ``_``):

* python-threatexchange ``threatexchange dataset -P --csv``:
  ``signal_type, signal_str, collab, category, tags``;
* HMA 1.x banks: ``signal_type, signal_value, signal_id, bank_member_tags``; its
  ThreatExchange data files: ``hash, indicator_id, descriptor_id, timestamp, tags``;
* HMA 2 (OpenMediaMatch) content metadata: ``content_id``;
* the ThreatExchange UI's CSV download: ``td_raw_indicator, td_subjective_tags, td_owner_name``;
* ``pdq-photo-hasher`` output (``hash,quality,filename`` lines) once given that header line.

Columns that are none of these (``signal_type``, ``category``, ``timestamp``...) are kept as
*extras*, as strings.

Labels
------
python-threatexchange and HMA join tags with spaces (``"tag1 tag2"``, split with
``split(" ")``); the ThreatExchange UI joins them with semicolons (``"testing;pwny"``). So a
labels field that contains ``;`` is split on ``;`` (labels may then hold spaces), any other is
split on whitespace; labels are stripped and empty ones dropped. ``write_hashes`` joins labels
with spaces when none holds whitespace (what the peers read), else with ``;`` (adding a final
``;`` to a single label, so it is not split); a label that is empty, has surrounding
whitespace or holds ``;`` cannot be written.

Examples
--------
>>> import os, tempfile
>>> from hashmatch.formats import read_hashes, write_hashes, HashRecords
>>> path = os.path.join(tempfile.mkdtemp(), "list.tsv.gz")
>>> write_hashes(path, HashRecords(["ab" * 32], ids=[7], labels=[("spam",)]))
1
>>> reader = read_hashes(path)
>>> chunk = next(reader)
>>> reader.format, chunk.ids.tolist(), chunk.labels
('tsv', [7], [('spam',)])
"""

from __future__ import annotations

from .feed_reader import FEED_DIALECTS, parse_feed, read_feed
from .feeds import FeedBatch, Rejected
from .names import COLUMN_ALIASES
from .perception import from_base64, to_base64
from .reader import HashReader, read_hashes
from .records import HashRecords
from .vpdq import VPDQ_FORMATS, format_vpdq, parse_vpdq, read_vpdq, write_vpdq
from .writer import write_hashes

__all__ = [
    "COLUMN_ALIASES",
    "FEED_DIALECTS",
    "VPDQ_FORMATS",
    "FeedBatch",
    "HashReader",
    "HashRecords",
    "Rejected",
    "format_vpdq",
    "from_base64",
    "parse_feed",
    "parse_vpdq",
    "read_feed",
    "read_hashes",
    "read_vpdq",
    "to_base64",
    "write_hashes",
    "write_vpdq",
]

# The examples of the submodules' public objects run with this package's (tests/test_docs.py).
__test__ = {
    "HashRecords": HashRecords,
    "HashRecords.concat": HashRecords.concat,
    "HashReader": HashReader,
    "read_hashes": read_hashes,
    "write_hashes": write_hashes,
    "read_feed": read_feed,
    "parse_feed": parse_feed,
    "from_base64": from_base64,
    "to_base64": to_base64,
}
# (hashmatch.formats.vpdq's examples run as a module of their own)
