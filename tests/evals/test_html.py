"""The HTML report's baseline section, and transcripts that carry markup, parsed."""

from evals import html_report, report, thresholds
from evals.metrics import ALL, Score
from evals.records import TurnRecord
from tests.evals.conftest import Tags

METRICS = [ALL["completed"], ALL["must_contain"]]


def _built(reply: str, passed: bool, baseline: dict[str, object] | None = None) -> dict[str, object]:
    record = TurnRecord("calc", 0, "tools", "main", "What is <b>6*7</b>?", reply)
    scores = {
        record.key: {
            "completed": Score(1.0, True, "answered"),
            "must_contain": Score(1.0 if passed else 0.0, passed, "all present" if passed else "missing"),
        }
    }
    return report.build(
        mode="dataset",
        source={"name": "small", "version": 1, "sha256": "0" * 64},
        records=[record],
        scores=scores,
        metrics=METRICS,
        thresholds=thresholds.Thresholds(),
        baseline=baseline,
        extra={"created_at": "2025-01-01T00:00:00+00:00"},
    )


def _parse(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_the_baseline_section_names_the_worse_case_and_its_broken_check():
    baseline = {**_built("42", passed=True), "_path": "base/report.json"}
    page = html_report.render(_built("I would rather not say.", passed=False, baseline=baseline))
    parsed = _parse(page)
    text = " ".join(t.strip() for t in parsed.text if t.strip())
    assert "Against the baseline" in text and "base/report.json" in text
    section = page.split("<h2>Against the baseline</h2>")[1].split("<h2>")[0]
    worse = section.split("<h3>Worse (1)</h3>")[1].split("<h3>")[0]
    cells = [t.strip() for t in _parse(worse).text if t.strip()]
    assert cells[:4] == ["case", "before", "after", "checks"]
    assert cells[4:] == ["calc", "1", "0.5", "#0 must_contain"]
    assert "<h3>Better (0)</h3>" in section


def test_markup_in_a_transcript_is_shown_not_run():
    page = html_report.render(_built('<script>alert("x")</script><img src=x onerror=alert(1)>', False))
    parsed = _parse(page)
    names = [t for t, _ in parsed.tags]
    assert "script" not in names and "img" not in names
    text = "".join(parsed.text)
    assert '<script>alert("x")</script>' in text and "<b>6*7</b>" in text
