"""The committed baselines: real runs the gate can compare later runs with (`--baseline`)."""

import hashlib
import json

from app.config import PROJECT_ROOT
from evals.commands import select_metrics
from evals.report import load_baseline

LOCAL = PROJECT_ROOT / "evals" / "baselines" / "starter.v2.local-qwen2.5-coder-1.5b.json"


def test_the_local_model_baseline_is_a_valid_baseline_for_starter_v2() -> None:
    names = [m.name for m in select_metrics("deterministic")]
    baseline = load_baseline(LOCAL, mode="dataset", dataset=("starter", 2), metrics=names)
    assert baseline["source"]["name"] == "starter" and baseline["source"]["version"] == 2
    # It measured exactly the dataset file on disk: a changed case is a new version, never an edit.
    dataset = PROJECT_ROOT / baseline["source"]["path"]
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == baseline["source"]["sha256"]
    report = json.loads(LOCAL.read_text())
    assert report["agent_model"] == "qwen2.5-coder-1.5b"
    assert report["summary"]["cases"] == 50 and len(report["cases"]) == 50
    assert report["metrics"]["completed"]["n"] == 71 and report["metrics"]["completed"]["errors"] == 0
