"""``hashmatch match LIST QUERIES``: every (query, list) pair of hashes within a Hamming
distance, as CSV ``query_id,list_id,distance,query_hash,list_hash``."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable

import hashmatch as hm
from hashmatch._validation import check_threads
from hashmatch.files import atomic_text

from . import common
from .common import HashFile

CSV_HEADER = ("query_id", "list_id", "distance", "query_hash", "list_hash")


def read(path: str, args: argparse.Namespace, bits: int | None, bits_from: str) -> HashFile:
    """Every hash of ``path``; a file without any is an error, never zero matches."""
    data = common.read_hash_file(
        path,
        format=args.format,
        bits=bits,
        bits_from=bits_from,
        skip_invalid=args.skip_invalid,
        progress=args.progress,
        text_ids=True,
    )
    if len(data.records) == 0:
        why = "every row was invalid" if data.skipped else "the file has no data rows"
        raise hm.HashFormatError(
            f"{path}: expected at least one hash to match, but {why} (read as"
            f" {data.format}); nothing would be matched"
        )
    return data


def id_of(data: HashFile) -> Callable[[int], str]:
    """The id of the hash of a row: the one in the file (its id or key column, or the second
    column of a file without header), else its line number."""
    records = data.records
    lines, keys = records.lines, records.keys
    assert lines is not None
    if records.ids is not None:
        given_ids = records.ids
        return lambda row: str(int(given_ids[row]))
    if keys is None:
        return lambda row: str(int(lines[row]))

    def key_or_line(row: int) -> str:
        key = keys[row]
        return (key.strip() if key is not None else "") or str(int(lines[row]))

    return key_or_line


def run(args: argparse.Namespace) -> int:
    """Run ``hashmatch match``: every (query, list) pair within ``--max-distance``, as CSV."""
    threads = check_threads(args.threads)
    common.check_paths([("LIST", args.list), ("QUERIES", args.queries)], [("--out", args.out)])
    t0 = time.perf_counter()
    with atomic_text(args.out) as out:  # opened first: a bad --out fails before the work
        bits = common.bits_option(args.bits)
        hashes = read(args.list, args, bits, f"from --bits {bits}")
        width = hashes.codes.shape[1] * 8
        radius = common.radius(args.max_distance, width)
        queries = read(args.queries, args, width, f"like {args.list}")
        index, plan = common.build_index(hashes.codes, radius, args.progress)
        t1 = time.perf_counter()
        query_id, list_id = id_of(queries), id_of(hashes)
        hex_of, query_codes, list_codes = common.hex_of, queries.codes, hashes.codes
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        matches = 0
        for start, result in common.range_batches(
            index, queries.codes, radius, threads, args.progress
        ):
            rows = common.result_rows(start, result).tolist()
            triples = zip(rows, result.ids.tolist(), result.distances.tolist(), strict=True)
            writer.writerows(
                (query_id(q), list_id(i), d, hex_of(query_codes[q]), hex_of(list_codes[i]))
                for q, i, d in triples
            )
            matches += len(result.ids)
    t2 = time.perf_counter()
    common.report_skipped(hashes.skipped + queries.skipped)
    print(
        f"hashmatch: {len(queries.codes):,} queries x {len(hashes.codes):,} list hashes"
        f" ({width} bits, distance <= {radius}): {matches:,} matches;"
        f" read and index {t1 - t0:.2f} s, search {t2 - t1:.2f} s;"
        f" {common.describe_index(index, plan)}",
        file=sys.stderr,
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``match`` command's options."""
    match = commands.add_parser(
        "match",
        help="match a file of query hashes against a file of list hashes",
        description="Write every (query, list) pair of hashes within --max-distance as CSV:"
        " query_id,list_id,distance,query_hash,list_hash, by query, then distance, then list"
        " order. LIST and QUERIES are read as 'hashmatch dedup' reads FILE: plain hex (one"
        " hash a line, 'hex,id', or 'signal_type hash'), CSV or TSV with or without header"
        " (ThreatExchange / HMA column names, 'pdq,<hash>,...' rows), gzip-compressed or not;"
        " blank lines, '#' comments and a UTF-8 BOM are skipped. The id of a hash is its id"
        " or key column (the column after the hash without a header), else its line number."
        " A file without any hash is an error.",
    )
    match.add_argument("list", metavar="LIST", help="hashes to match against ('-': stdin)")
    match.add_argument("queries", metavar="QUERIES", help="query hashes ('-': stdin)")
    match.add_argument(
        "--out",
        default="-",
        metavar="FILE",
        help="CSV output, written atomically (default '-': stdout)",
    )
    common.add_input_options(match, "hash width (default: that of the first hash of LIST)")
    common.add_common(match)
    match.set_defaults(handler=run)
