"""The CSV gradebook: one row per engine (submission), one column per case id holding its status."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

from harness import Reporter, hookimpl
from harness.model import CSV_COLUMNS, STATUSES, ReportContext, RunResult
from harness.reporting.common import Streamed, clean

#: The fixed leading columns (the case ids follow); kept under its old name for importers.
FIXED_COLUMNS = CSV_COLUMNS


def safe_cell(text: str) -> str:
    """A text cell that spreadsheets will not run as a formula (a leading = + - @ gets a quote), with
    control characters escaped."""
    text = clean(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """RFC 4180 CSV with a header row, a row at a time; the header's case ids come from the engines'
    summaries."""
    case_ids = list(dict.fromkeys(i for s in run.summaries() for i in s.case_ids))
    yield _row([*CSV_COLUMNS, *case_ids])
    for label, e in zip(run.labels(), run.engines, strict=True):
        status = {c.id: c.status for c in e.cases}
        counts = e.counts
        yield _row([safe_cell(label), safe_cell(e.engine), safe_cell(e.source), f"{e.score:g}",
                    f"{e.max_score:g}", f"{e.percent:.2f}", *(counts[s] for s in STATUSES),
                    safe_cell(e.load_error), *(status.get(i, "") for i in case_ids)])


def _row(cells: list) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("csv", render)
