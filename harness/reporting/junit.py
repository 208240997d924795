"""The JUnit XML report: what GitHub Actions, GitLab and Jenkins dashboards read.

One ``<testsuite>`` per engine and suite, one ``<testcase>`` per case.
``failed`` becomes ``<failure>``, ``error`` and ``timeout`` become ``<error>``,
``unsupported`` becomes ``<skipped>``; each carries the verdict's message.
Times are in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from harness import Reporter, hookimpl
from harness.model import CaseResult, ReportContext, RunResult, Status
from harness.reporting.common import case_text, clean, summary

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


def render(run: RunResult, context: ReportContext) -> str:
    """One XML document with a ``<testsuites>`` root."""
    import xml.etree.ElementTree as ET  # here, not at start-up: most runs write another format

    root = ET.Element("testsuites", name="grade")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for label, e in zip(run.labels(), run.engines, strict=True):
        suites: dict[str, list[CaseResult]] = {}
        for c in e.cases:
            suites.setdefault(c.suite, []).append(c)
        for suite, cases in suites.items():
            counts = {"tests": len(cases),
                      "failures": sum(c.status == Status.FAILED for c in cases),
                      "errors": sum(c.status in (Status.ERROR, Status.TIMEOUT) for c in cases),
                      "skipped": sum(c.status == Status.UNSUPPORTED for c in cases)}
            for k, n in counts.items():
                totals[k] += n
            attrib = {"name": xml_text(f"{label}::{suite}"), **{k: str(n) for k, n in counts.items()},
                      "time": _seconds(sum(c.duration_s for c in cases))}
            node = ET.SubElement(root, "testsuite", attrib)
            props = ET.SubElement(node, "properties")
            for key, value in (("submission", e.submission), ("engine", e.engine), ("source", e.source),
                               *((("origin", e.origin),) if e.origin else ()),
                               ("score", f"{sum(c.score for c in cases):g}"),
                               ("max_score", f"{sum(c.max_score for c in cases):g}")):
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
    root.attrib.update({k: str(n) for k, n in totals.items()}, time=_seconds(run.duration_s))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("junit", render)
