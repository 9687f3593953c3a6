"""The typed benchmark report: a report.json read back is the report written, and a broken
one fails in one line naming the file and what is wrong."""

from __future__ import annotations

import copy
import json

import pytest

from slimformer.errors import SlimformerError
from slimformer.evaluation.report_data import load_report


def row(name: str, p50: float = 1.0) -> dict:
    return {"name": name, "kind": "onnx-lean", "path": f"/runs/{name}", "size_mb": 17.5,
            "accuracy": 0.9, "latency_ms": {"p50": p50, "p50_min": p50, "p50_max": p50,
                                            "p50_rounds": [p50, p50]}}


REPORT = {"environment": {"threads": 2}, "settings": {"rounds": 2}, "test_rows": 5500,
          "timing": {"method": "per-process rounds"}, "variants": [row("teacher", 7.7),
                                                                    row("student", 0.7)],
          "data": {"clinc": True}, "baseline": "teacher"}


def test_a_report_round_trips_through_json(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(REPORT))
    report = load_report(tmp_path)  # a folder holding report.json, or the file itself
    assert report.to_dict() == REPORT
    assert load_report(tmp_path / "report.json") == report
    assert report.row("student")["latency_ms"]["p50"] == 0.7
    assert report.names() == ["teacher", "student"]
    with pytest.raises(SlimformerError, match="'nope' is not in the benchmark report; it has: "
                                              "teacher, student"):
        report.row("nope")


def broken(change) -> dict:
    data = copy.deepcopy(REPORT)
    change(data)
    return data


@pytest.mark.parametrize("data, message", [
    ([], "is not a slimformer benchmark report"),
    (broken(lambda d: d.pop("environment")), "is not a slimformer benchmark report"),
    (broken(lambda d: d.update(variants=[])), "is not a slimformer benchmark report"),
    (broken(lambda d: d.update(extra=1)), "unknown report keys extra"),
    (broken(lambda d: d.update(variants="teacher")), "variants must be a list of objects"),
    (broken(lambda d: d["variants"][1].pop("latency_ms")), "'student' lacks latency_ms"),
    (broken(lambda d: d["variants"][0].update(accuracy="0.9")),
     "'teacher': accuracy must be a finite number"),
    (broken(lambda d: d["variants"][0]["latency_ms"].update(p50=float("nan"))),
     "latency_ms.p50 must be a finite number"),
    (broken(lambda d: d["variants"][0].update(latency_ms=[1.0])),
     "latency_ms must be an object with p50"),
    (broken(lambda d: d["variants"][1].update(name="teacher")), "variant names repeat"),
    (broken(lambda d: d.update(data=[])), "data must be an object"),
    (broken(lambda d: d.update(test_rows="many")), "test_rows must be a count of rows"),
    (broken(lambda d: d["variants"][0].update(test_right=[1, 0])),
     "'teacher': test_right must map argmax / with_fallback to packed answers"),
    (broken(lambda d: d["variants"][0].update(test_right={"argmax": 5})),
     "test_right must map argmax / with_fallback to packed answers"),
])
def test_a_broken_report_is_one_line_naming_the_file(tmp_path, data, message):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SlimformerError, match=message) as caught:
        load_report(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_or_malformed_file_is_one_line(tmp_path):
    with pytest.raises(SlimformerError, match="benchmark report not found"):
        load_report(tmp_path / "none.json")
    (tmp_path / "report.json").write_text("{\"variants\": ")
    with pytest.raises(SlimformerError, match="is not valid JSON"):
        load_report(tmp_path)
