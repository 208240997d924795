"""Pictures of failing cases: the HTML report (checked in headless Chromium), DOT, and the layout."""

from __future__ import annotations

import re
import shutil
import textwrap

import pytest

from conftest import ROOT


SHAPES = ROOT / "tests" / "cases" / "feedback"


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    from conftest import fixture_engine, run_grade

    out = tmp_path_factory.mktemp("html") / "report.html"
    result = run_grade("--engine", fixture_engine("bug_sub_sign"), "--engine", fixture_engine("micrograd_full"),
                       "--cases", SHAPES, "--format", "html", "--output", out, "--fuzz", "20", "--seed", "7")
    assert result.code == 1, result.stderr
    assert result.stdout == ""
    return out


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_html_report_is_one_self_contained_file(html_report):
    text = html_report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<link|<img|\bsrc=|@import", text)  # nothing fetched from anywhere
    assert text.count("<svg") >= 2
    assert "sub: d(a - b)/db is 1, expected -1" in text
    assert 'data-id="shapes::sub_times_c"' in text and 'data-id="fuzz::20"' in text
    assert "9/11" in text and "11/11" in text  # a score header per engine


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_html_marks_the_divergent_node(html_report):
    text = html_report.read_text()
    failure = text[text.index('class="failure" id="e0-shapes::sub_times_c"'):]
    drawing = failure[failure.index("<svg"):failure.index("</svg>")]
    assert re.search(r'<g class="node divergent" data-node="n1">.*?>b</text>.*?'
                     r">grad 3</text>.*?>expected -3</text>", drawing)
    # the highlight is the op that handed b its wrong grad: a - b, not b
    assert re.search(r'<g class="node culprit" data-node="n\d+"><rect[^>]*/><text[^>]*>sub: a - b</text>', drawing)
    assert '<g class="node output" data-node="n4">' in drawing


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_html_escapes_what_the_engine_says(grade, tmp_path):
    engine = tmp_path / "shouting.py"
    engine.write_text(textwrap.dedent('''
        class Value:
            def __init__(self, data):
                self.data, self.grad = data, 0.0
            def __add__(self, other):
                raise ValueError("<script>alert('x')</script>")
            def backward(self):
                pass
    '''))
    result = grade("--engine", engine, "--cases", SHAPES, "-k", "x_plus_x", "--format", "html")
    assert result.code == 1
    assert "<script>alert" not in result.stdout
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in result.stdout


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_html_report_renders_in_headless_chromium(html_report):
    from selenium.webdriver.common.by import By

    browser = _browser()
    try:
        browser.get(html_report.as_uri())
        case = browser.find_element(By.ID, "e0-shapes::sub_times_c")
        assert case.is_displayed()
        drawing = case.find_element(By.CSS_SELECTOR, "svg.graph")
        box = browser.execute_script("var b = arguments[0].getBBox(); return [b.width, b.height];", drawing)
        assert box[0] > 300 and box[1] > 50  # the SVG was laid out and painted, not just parsed
        assert drawing.size["width"] > 100
        node = drawing.find_element(By.CSS_SELECTOR, "g.node.divergent rect")
        assert "rgb(192, 57, 43)" in node.value_of_css_property("stroke")
        # The filters hide failing cases and show them again.
        browser.find_element(By.CSS_SELECTOR, "input.status[value=failed]").click()
        assert not case.is_displayed()
        browser.find_element(By.CSS_SELECTOR, "input.status[value=failed]").click()
        assert case.is_displayed()
        browser.find_element(By.ID, "q").send_keys("tanh")
        assert not case.is_displayed()
    finally:
        browser.quit()


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_graph_dot_prints_failing_graphs(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "--cases", SHAPES, "--graph", "dot")
    assert result.code == 1
    assert result.stdout.count("digraph ") == 2
    assert result.stdout.startswith('digraph "bug_sub_sign: shapes::sub_two_leaves" {\n  rankdir=LR;')
    assert 'n1 [label="b\\nvalue 2\\ngrad 1\\nexpected -1", color=red, fontcolor=red, penwidth=1];' \
        in result.stdout
    assert re.search(r'n2 \[label="sub: a - b[^\]]*penwidth=3, style=filled', result.stdout)  # the culprit op
    assert "n0 -> n2" in result.stdout and "n1 -> n2" in result.stdout


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_graph_dot_notes_graphs_too_big_to_draw(grade, engine):
    result = grade("--engine", engine("bug_recursive_topo"), "--cases", SHAPES, "--graph", "dot")
    assert result.stdout == "// bug_recursive_topo: shapes::deep_chain: graph not drawn (more than 60 nodes)\n"


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_graph_dot_and_another_format_do_not_mix(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "--graph", "dot", "--format", "json")
    assert result.code == 2
    assert "--graph dot prints DOT instead of the report" in result.stderr


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_html_names_each_submission_and_keeps_anchors_unique(grade, engine, tmp_path):
    for who in ("alice", "bob"):
        (tmp_path / "subs" / who).mkdir(parents=True)
        shutil.copy(engine("bug_sub_sign"), tmp_path / "subs" / who / "engine.py")
    result = grade("--submissions", tmp_path / "subs", "--cases", SHAPES, "-k", "sub_two_leaves",
                   "--format", "html")
    assert result.code == 1, result.stderr
    assert "<h2>alice: engine <small>" in result.stdout and "<h2>bob: engine <small>" in result.stdout
    ids = re.findall(r' id="([^"]+)"', result.stdout)
    assert len(ids) == len(set(ids))
    assert 'id="e0-shapes::sub_two_leaves"' in result.stdout and 'id="e1-shapes::sub_two_leaves"' in result.stdout
