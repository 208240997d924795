"""The JUnit XML report: what GitHub Actions, GitLab and Jenkins dashboards read.

One ``<testsuite>`` per engine and suite, one ``<testcase>`` per case.
``failed`` becomes ``<failure>``, ``error`` and ``timeout`` become ``<error>``,
``unsupported`` becomes ``<skipped>``; each carries the verdict's message.
Times are in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from harness import Reporter, hookimpl
from harness.model import CaseResult, EngineResult, ReportContext, RunResult, Status
from harness.reporting.common import Streamed, case_text, clean, summary

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

#: status -> (child element, its ``type`` attribute); passed has none.
ELEMENTS = {Status.FAILED: ("failure", "failed"), Status.ERROR: ("error", "error"),
            Status.TIMEOUT: ("error", "timeout"), Status.UNSUPPORTED: ("skipped", "unsupported")}

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with control characters and characters that XML cannot hold written as
    ``\\xNN``/``\\uNNNN`` escapes."""
    return _NOT_XML.sub(lambda m: repr(m.group())[1:-1], clean(text))


def _seconds(s: float) -> str:
    return f"{max(0.0, s):.3f}"


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """One XML document with a ``<testsuites>`` root, an engine's suites at a time; the root's counts
    come from the engines' summaries."""
    import xml.etree.ElementTree as ET  # here, not at start-up: most runs write another format

    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for s in run.summaries():
        totals["tests"] += len(s.case_ids)
        totals["failures"] += s.counts[Status.FAILED]
        totals["errors"] += s.counts[Status.ERROR] + s.counts[Status.TIMEOUT]
        totals["skipped"] += s.counts[Status.UNSUPPORTED]
    root = ET.Element("testsuites", name="grade")
    root.attrib.update({k: str(n) for k, n in totals.items()}, time=_seconds(run.duration_s))
    head = ET.tostring(root, encoding="unicode")  # <testsuites ... />
    empty = True
    for label, e in zip(run.labels(), run.engines, strict=True):
        holder = ET.Element("testsuites")
        holder.extend(_suites(label, e, run))
        ET.indent(holder)  # as deep as in the whole document: each suite is a child of the root
        for node in holder:
            node.tail = None
            yield ("" if not empty else '<?xml version="1.0" encoding="UTF-8"?>\n' + head[:-3] + ">") + "\n  " \
                + ET.tostring(node, encoding="unicode")
            empty = False
    yield '<?xml version="1.0" encoding="UTF-8"?>\n' + head + "\n" if empty else "\n</testsuites>\n"


def _suites(label: str, e: EngineResult, run: RunResult) -> Iterator[Element]:
    """One engine's ``<testsuite>`` elements, one per suite; their properties say which submission, score
    and sandbox (with its cgroup limits, when recorded)."""
    import xml.etree.ElementTree as ET

    suites: dict[str, list[CaseResult]] = {}
    for c in e.cases:
        suites.setdefault(c.suite, []).append(c)
    for suite, cases in suites.items():
        counts = {"tests": len(cases),
                  "failures": sum(c.status == Status.FAILED for c in cases),
                  "errors": sum(c.status in (Status.ERROR, Status.TIMEOUT) for c in cases),
                  "skipped": sum(c.status == Status.UNSUPPORTED for c in cases)}
        attrib = {"name": xml_text(f"{label}::{suite}"), **{k: str(n) for k, n in counts.items()},
                  "time": _seconds(sum(c.duration_s for c in cases))}
        node = ET.Element("testsuite", attrib)
        props = ET.SubElement(node, "properties")
        for key, value in (("submission", e.submission), ("engine", e.engine), ("source", e.source),
                           *((("origin", e.origin),) if e.origin else ()),
                           ("score", f"{sum(c.score for c in cases):g}"),
                           ("max_score", f"{sum(c.max_score for c in cases):g}"), ("sandbox", run.sandbox),
                           *((("cgroup", run.cgroup),) if run.cgroup else ())):
            ET.SubElement(props, "property", name=key, value=xml_text(value))
        if e.load_notes:
            notes = ET.SubElement(node, "system-out")
            notes.text = xml_text("\n".join(["loading:", *e.load_notes]))
        for c in cases:
            case = ET.SubElement(node, "testcase", name=c.id, classname=xml_text(label),
                                 time=_seconds(c.duration_s))
            if c.status in ELEMENTS:
                tag, kind = ELEMENTS[c.status]
                child = ET.SubElement(case, tag, type=kind, message=xml_text(summary(c)))
                child.text = xml_text(case_text(c) or c.status)
        if e.load_error:
            err = ET.SubElement(node, "system-err")
            err.text = xml_text(f"the submission failed to load:\n{e.load_error}")
        yield node


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("junit", render)
