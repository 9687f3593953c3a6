"""`slimformer optimize`: the choice rests on validation only, a run resumes where it stopped,
and a changed setting redoes only what depends on it."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slimformer.errors import SlimformerError
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.optimize.select import Budget, choose, pareto_front

from .conftest import tiny_bert


def row(name, val, test, p50, size=10.0, kind="onnx-lean"):
    return {"name": name, "kind": kind, "accuracy": test / 100, "size_mb": size,
            "validation": {"accuracy": val / 100},
            "latency_ms": {"p50": p50, "p50_min": p50 * 0.95, "p50_max": p50 * 1.05}}


REPORT = BenchmarkReport(environment={}, settings={}, test_rows=0, timing={}, variants=[
    row("teacher", 95.0, 87.0, 10.0, 90, "pytorch"), row("int8", 94.8, 86.9, 2.0, 23),
    row("student", 94.0, 86.5, 1.0, 17), row("student-fp32", 94.4, 86.6, 5.0, 60, "pytorch")])


def test_the_fastest_within_the_budget_is_chosen_on_validation():
    choice = choose(REPORT, "teacher", Budget(0.5))
    assert choice["name"] == "int8"  # student is faster but 1.0 pt below on validation
    assert "fastest within 0.5 pt" in choice["reason"] and "5.0x the teacher" in choice["reason"]
    assert choose(REPORT, "teacher", Budget(1.0))["name"] == "student"
    assert choose(REPORT, "teacher", Budget(1.0, max_size_mb=20))["name"] == "student"
    assert choose(REPORT, "teacher", Budget(0.5, max_size_mb=70))["name"] == "int8"


def test_the_test_split_never_changes_the_choice():
    other = copy.deepcopy(REPORT)
    for r in other.variants:
        r["accuracy"] = {"teacher": 0.5, "int8": 0.1, "student": 0.99, "student-fp32": 0.2}[
            r["name"]]
    for budget in (Budget(0.5), Budget(1.0), Budget(2.0, max_latency_ms=4.0)):
        assert choose(other, "teacher", budget)["name"] == choose(REPORT, "teacher",
                                                                  budget)["name"]


def test_a_teacher_not_in_the_report_is_one_line_listing_the_variants():
    with pytest.raises(SlimformerError, match="'tutor' is not in the benchmark report; it has: "
                                              "teacher, int8, student, student-fp32$"):
        choose(REPORT, "tutor", Budget(0.5))


def test_a_budget_nothing_meets_names_the_closest_candidate():
    with pytest.raises(SlimformerError, match="no variant meets the budget; the closest is "
                                              "'int8': p50 2.00 ms"):
        choose(REPORT, "teacher", Budget(0.5, max_latency_ms=1.5))


def test_pareto_front():
    assert set(pareto_front(REPORT.variants)) == {"teacher", "int8", "student"}


# ---------------------------------------------------------------------------------------------
# A whole run on a tiny model


def arguments(tmp: Path, clinc_dir: Path, base: Path, **changes):
    from slimformer.data.args import DataArguments
    from slimformer.evaluation.settings import BenchmarkSettings
    from slimformer.optimize.args import OptimizeArguments

    args = OptimizeArguments(base_model=str(base), students=["0"], variants=["onnx-int8"],
                             output_dir=str(tmp / "run"), max_accuracy_drop=100.0,
                             namespace="alice", **changes)
    data = DataArguments(data_file=str(clinc_dir), max_samples=120, max_length=16)
    settings = BenchmarkSettings(threads=1, latency_queries=20, warmup_queries=3,
                                 batch_size=16, throughput_batches=1, measure_memory=False)
    return args, data, settings


def finished(run: Path) -> dict[str, float]:
    """When each step of the run finished, by its folder."""
    return {p.parent.relative_to(run).as_posix(): json.loads(p.read_text())["finished"]
            for p in run.rglob(".slimformer-step.json")}


@pytest.fixture(scope="module")
def base(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("optimize") / "base"
    tiny_bert().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def first_run(base, clinc_dir):
    from slimformer.optimize.run import optimize

    tmp = base.parent
    choice = optimize(*arguments(tmp, clinc_dir, base))
    return tmp / "run", choice


def test_a_run_writes_every_variant_report_choice_and_card(first_run):
    run, choice = first_run
    report = json.loads((run / "benchmark" / "report.json").read_text())
    names = {r["name"] for r in report["variants"]}
    assert names == {"teacher", "teacher-onnx-int8", "student-1l-0", "student-1l-0-onnx-int8"}
    assert choice == json.loads((run / "best.json").read_text())
    fastest = min(report["variants"], key=lambda r: r["latency_ms"]["p50"])
    assert choice["name"] == fastest["name"]  # the budget (100 pt) admits every variant
    markdown = (run / "report.md").read_text()
    assert "**chosen**" in markdown
    # The chosen variant's test gap to the teacher, paired over the same queries.
    gap = choice["test_difference"]
    assert gap == report["variants"][[r["name"] for r in report["variants"]].index(
        choice["name"])]["test_difference"] or choice["name"] == "teacher"
    if gap:
        assert gap["points"] == pytest.approx(
            100 * (choice["test_accuracy"] - choice["teacher_test_accuracy"]))
        assert f"a difference of {gap['points']:+.2f} pt, 95% interval" in markdown
    assert (run / "report.png").stat().st_size > 10_000
    cards = sorted(run.glob("hub/alice/*/README.md"))
    assert len(cards) == 4
    assert set(finished(run)) == {"teacher", "student-1l-0", "variants/teacher",
                                  "variants/student-1l-0", "benchmark"}
    # every model and variant carries its own out-of-scope fallback, fitted on validation
    from slimformer.serving.fallback import read_rule

    teacher_rule = read_rule(run / "teacher")
    int8_rule = read_rule(run / "variants" / "teacher" / "teacher-onnx-int8")
    assert teacher_rule.fitted_on == int8_rule.fitted_on == "validation"
    assert read_rule(run / "student-1l-0").threshold != teacher_rule.threshold
    for row in report["variants"]:
        assert row["fallback"]["source"] == "stored with the model"
        assert {"with_fallback"} <= set(row) and "with_fallback" in row["validation"]


def test_rerun_skips_finished_steps_and_a_change_redoes_only_its_dependants(first_run, base,
                                                                          clinc_dir):
    from slimformer.optimize.run import optimize

    run, _ = first_run
    before = finished(run)
    optimize(*arguments(base.parent, clinc_dir, base))
    assert finished(run) == before  # nothing redone
    optimize(*arguments(base.parent, clinc_dir, base, alpha=0.3))
    after = finished(run)
    unchanged = {k for k in before if after[k] == before[k]}
    assert unchanged == {"teacher", "variants/teacher"}  # the student's chain was redone
    with pytest.raises(SlimformerError, match="no variant meets the budget; the closest is"):
        optimize(*arguments(base.parent, clinc_dir, base, alpha=0.3, max_latency_ms=1e-6))


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path, base, clinc_dir):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "slimformer.cli.main", "optimize",
               "--base_model", str(base), "--data_file", str(clinc_dir), "--max_samples", "120",
               "--max_length", "16", "--students", "0", "--variants", "onnx-int8",
               "--output_dir", str(run), "--max_accuracy_drop", "100", "--threads", "1",
               "--latency_queries", "20", "--warmup_queries", "3", "--batch_size", "16",
               "--throughput_batches", "1", "--measure_memory", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    record = run / "teacher" / ".slimformer-step.json"
    deadline = time.time() + 300
    while not record.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9, children included, mid-run
    process.wait()
    assert record.is_file()
    teacher_done = json.loads(record.read_text())["finished"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(record.read_text())["finished"] == teacher_done
    assert "teacher                      done" in result.stdout
    # the student's training shows progress: step, epoch, ETA, then validation accuracy
    assert re.search(r"step \d+/\d+, epoch [\d.]+/1, [\d.]+ s/step, ETA \d+", result.stdout)
    assert re.search(r"ETA \d+m?\d*s, validation accuracy [\d.]+%", result.stdout)
    assert (run / "best.json").is_file()
    assert not [p for p in run.rglob("*") if p.name.startswith(".") and "-" in p.name
                and p.is_dir()]  # no staging folder left behind


def test_search_pruning_and_trimming_become_candidates(tmp_path, base, clinc_dir):
    """The search runs before the students and sets their distillation settings; every model
    gets a vocabulary-trimmed copy, all benchmarked together. (Pruned students as candidates:
    tests/test_architectures.py, once per architecture.)"""
    import optuna
    import yaml

    from slimformer.optimize.run import optimize
    from slimformer.provenance import read_provenance

    args = arguments(tmp_path, clinc_dir, base, search_trials=2, max_hidden_weight=1.0,
                     trim_vocab=True)
    optimize(*args)
    run = tmp_path / "run"
    best = yaml.safe_load((run / "search" / "best_params.yaml").read_text())
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{run / 'search-study.db'}")
    assert len(study.trials) == 2 and {"alpha", "hidden_weight"} <= set(study.best_params)
    settings = read_provenance(run / "student-1l-0")["steps"][-1]["settings"]
    assert settings["alpha"] == pytest.approx(best["alpha"])
    assert settings["hidden_weight"] == pytest.approx(best["hidden_weight"])
    report = json.loads((run / "benchmark" / "report.json").read_text())
    kinds = {r["name"]: r["kind"] for r in report["variants"]}
    assert set(finished(run)) >= {"search", "teacher-trimmed", "student-1l-0-trimmed",
                                  "variants/teacher-trimmed"}
    assert kinds["teacher-trimmed-onnx-int8"] == "onnx-lean"
    trimmed = json.loads((run / "teacher-trimmed" / "config.json").read_text())
    assert trimmed["vocab_size"] < 30522
    # a rerun redoes nothing; the search's finished trials stay in its study
    before = finished(run)
    optimize(*args)
    assert finished(run) == before
    assert len(optuna.load_study(study_name=None, storage=f"sqlite:///{run / 'search-study.db'}"
                                 ).trials) == 2


def test_steps_run_in_dependency_order_and_a_bad_graph_is_refused():
    from slimformer.optimize.steps import Step, in_order

    def step(name, *depends):
        return Step(name, Path(name), {}, lambda folder: None, list(depends))

    ordered = in_order([step("compress", "student"), step("student", "teacher"),
                        step("teacher"), step("other")])
    assert [s.name for s in ordered] == ["teacher", "student", "compress", "other"]
    with pytest.raises(SlimformerError, match="unknown step\\(s\\) ghost"):
        in_order([step("a", "ghost")])
    with pytest.raises(SlimformerError, match="cycle: a, b"):
        in_order([step("a", "b"), step("b", "a")])


def test_a_step_redone_without_a_change_redoes_what_depends_on_it(tmp_path):
    """Its folder deleted, a step is redone with the same fingerprint; the steps that read
    its folder are redone too, a step beside it is not."""
    import shutil

    from slimformer.optimize.steps import Step, plan_status, run_steps

    runs: list[str] = []

    def step(name, *depends):
        def run(folder, name=name):
            runs.append(name)
            folder.mkdir(parents=True)
            (folder / "made").write_text(name)
        return Step(name, tmp_path / name, {"name": name}, run, list(depends))

    steps = [step("teacher"), step("student", "teacher"), step("benchmark", "student"),
             step("other")]
    run_steps(steps)
    assert runs == ["teacher", "student", "benchmark", "other"]
    shutil.rmtree(tmp_path / "student")
    assert [state for _, _, state in plan_status(steps)] == ["done", "to do", "to do", "done"]
    runs.clear()
    run_steps(steps)
    assert runs == ["student", "benchmark"]
    runs.clear()
    run_steps(steps)
    assert runs == []


def test_the_plan_is_a_graph_of_steps_that_each_own_one_folder(tmp_path, clinc_dir, base):
    """Pruned and trimmed models go through the same compress step as the others, and no
    step's folder lies inside another's."""
    from slimformer.optimize.run import plan

    args, data, settings = arguments(tmp_path, clinc_dir, base, prune_levels=[0.5],
                                     trim_vocab=True)
    steps, models = plan(args, data, settings, tmp_path / "run")
    names = {s.name: s for s in steps}
    assert set(models) == {"teacher", "student-1l-0", "teacher-trimmed",
                           "student-1l-0-trimmed", "teacher-pruned-50",
                           "student-1l-0-pruned-50"}
    for model in models:
        assert f"compress-{model}" in names
    assert names["compress-student-1l-0-pruned-50"].depends == ["student-1l-0-pruned-50"]
    assert names["student-1l-0-pruned-50"].depends == ["student-1l-0", "teacher"]
    folders = [s.folder for s in steps]
    assert len(set(folders)) == len(folders)
    assert not [(a, b) for a in folders for b in folders if a != b and b.is_relative_to(a)]


def test_the_soft_loss_reaches_students_and_pruning_and_their_fingerprints_only(
        tmp_path, clinc_dir, base):
    from slimformer.optimize.run import optimize, plan

    def step_settings(**changes):
        args, data, settings = arguments(tmp_path, clinc_dir, base, prune_levels=[0.5],
                                         search_trials=2, **changes)
        steps, _ = plan(args, data, settings, tmp_path / "run")
        return {s.name: s.settings for s in steps}

    kl, mse = step_settings(), step_settings(soft_loss="mse")
    assert "soft_loss" not in kl["student-1l-0"]  # (kl: older runs' fingerprints hold)
    assert "soft_loss" not in kl["search"]
    assert mse["student-1l-0"]["soft_loss"] == mse["student-1l-0-pruned-50"]["soft_loss"] == "mse"
    assert mse["search"]["soft_loss"] == "mse"
    from slimformer.optimize.training_steps import training_arguments

    args, _, _ = arguments(tmp_path, clinc_dir, base, soft_loss="mse")
    assert training_arguments(tmp_path / "t", args, 1.0).soft_loss == "mse"  # every teacher step
    assert mse["teacher"] == kl["teacher"]
    with pytest.raises(SlimformerError, match="soft_loss must be one of kl, mse, got 'l2'"):
        optimize(*arguments(tmp_path, clinc_dir, base, soft_loss="l2"))
    assert not (tmp_path / "run").exists()  # refused before any work


def answered(name, val, p50, right):
    """A row with per-row validation answers (right: a bool array over the same rows)."""
    from slimformer.evaluation.paired import pack_right

    found = row(name, val, 90.0, p50)
    found["validation"]["right"] = {"with_fallback": pack_right(right)}
    found["validation"]["rows"] = len(right)
    return found


def confident_report(rng_seed=0):
    """A teacher right on 95% of 2,000 validation rows; `near` 0.4 pt below it (inside 0.5 as
    measured, by disagreeing on 8% of the rows), `close` 0.1 pt below (disagreeing on 1%)."""
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    teacher = rng.random(2000) < 0.95
    rows = np.flatnonzero(teacher)
    wrong = np.flatnonzero(~teacher)
    near = teacher.copy()
    near[rows[:88]] = False  # 88 lost, 80 gained: -8 rows = -0.4 pt
    near[wrong[:80]] = True
    close = teacher.copy()
    close[rows[:12]] = False  # 12 lost, 10 gained: -0.1 pt
    close[wrong[:10]] = True
    pct = 100 * teacher.mean()
    return BenchmarkReport(environment={}, settings={}, test_rows=0, timing={}, variants=[
        answered("teacher", pct, 10.0, teacher), answered("near", pct - 0.4, 1.0, near),
        answered("close", pct - 0.1, 2.0, close)])


def test_with_confidence_a_noisy_drop_inside_the_budget_is_not_enough():
    report = confident_report()
    assert choose(report, "teacher", Budget(0.5))["name"] == "near"  # the point estimate
    choice = choose(report, "teacher", Budget(0.5, confidence=0.8))
    assert choice["name"] == "close"
    assert "at 80% confidence" in choice["reason"]
    assert choice["validation_difference"]["points"] == pytest.approx(-0.1)
    assert any("up to" in text and "at 80% confidence" in text
               for text in choice["missed"]["near"])


def test_the_confidence_bound_is_the_drop_plus_z_paired_standard_errors():
    from statistics import NormalDist

    from slimformer.evaluation.paired import validation_difference
    from slimformer.optimize.select import drop_bound

    report = confident_report()
    teacher, near = report.row("teacher"), report.row("near")
    se = validation_difference(near, teacher)["standard_error"]
    assert se > 0.3  # 168 disagreements in 2,000 rows: about 0.65 pt
    assert drop_bound(near, teacher, 0.9) == pytest.approx(
        0.4 + NormalDist().inv_cdf(0.9) * se)
    assert drop_bound(near, teacher, 0.5) == pytest.approx(0.4)
    assert drop_bound(teacher, teacher, 0.9) == 0
    unpaired = dict(near, validation={k: v for k, v in near["validation"].items()
                                      if k != "right"})
    assert drop_bound(unpaired, teacher, 0.9) is None  # choose() warns and takes the drop


def test_without_per_row_answers_the_drop_is_taken_as_measured(caplog):
    with caplog.at_level("WARNING"):
        choice = choose(REPORT, "teacher", Budget(1.0, confidence=0.8))
    assert choice["name"] == "student"
    warnings = [r.getMessage() for r in caplog.records if "no per-row" in r.getMessage()]
    assert len(warnings) == 1  # once for the report, naming each variant without answers
    others = [r["name"] for r in REPORT.variants if r["name"] != "teacher"]
    assert others and all(name in warnings[0] for name in others)
    assert "teacher" not in warnings[0]  # the teacher's own drop needs no answers


@pytest.mark.parametrize("confidence", [1.0, 0.2, float("nan")])
def test_a_confidence_outside_half_to_one_is_one_line(confidence):
    with pytest.raises(SlimformerError, match="--budget_confidence must be"):
        Budget(0.5, confidence=confidence)
