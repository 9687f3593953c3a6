"""Passes and chains (slimformer.compression.passes): each pass one declaration, a variant a
chain of them, today's names aliases of their chains, every model through the same chains."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimformer.compression.args import ALIASES, CompressArguments
from slimformer.errors import SlimformerError
from slimformer.provenance import read_provenance


def test_every_alias_is_a_valid_chain_and_names_todays_folder():
    from slimformer.compression.chains import chain_of

    args = CompressArguments(optimization_level="O2")
    suffixes = {key: chain_of(key, args).suffix for key in ALIASES}
    assert suffixes == {"torch-int8": "torch-int8", "onnx": "onnx", "onnx-opt": "onnx-O2",
                        "onnx-int8": "onnx-int8", "onnx-int8-static": "onnx-int8-static",
                        "onnx-opt-int8": "onnx-O2-int8"}
    # a level spelled in the chain wins over --optimization_level
    assert chain_of("onnx > O3 > int8", args).suffix == "onnx-O3-int8"
    assert chain_of("onnx>opt>int8", CompressArguments(optimization_level="O1")).suffix \
        == "onnx-O1-int8"


@pytest.mark.parametrize(("spec", "message"), [
    ("onnx > int9", "unknown variant 'onnx > int9' \\(no pass 'int9'\\)"),
    ("int8", "int8 takes a onnx folder, but it gets a pytorch one"),
    ("onnx > int8 > int8-static", "quantizes twice"),
    ("torch-int8 > onnx", "onnx takes a pytorch folder, but it gets a pytorch-int8 one"),
    ("onnx > O7", "no pass 'O7'"),
])
def test_a_bad_chain_is_refused_before_any_work(spec, message):
    from slimformer.compression.chains import chain_of

    with pytest.raises(SlimformerError, match=message):
        chain_of(spec, CompressArguments())


def test_a_pass_config_checks_its_values():
    from slimformer.compression.chains import chain_of

    with pytest.raises(SlimformerError, match="calibration method 'median'"):
        chain_of("onnx > int8-static", CompressArguments(calibration_method="median"))
    with pytest.raises(SlimformerError, match="preset"):
        chain_of("onnx > int8", CompressArguments(preset="avx9000"))


def test_every_pass_declares_what_a_card_and_a_chain_need():
    from slimformer.compression.passes.base import KINDS, registry
    from slimformer.hub.card_steps import step_phrase, step_title

    passes = set(registry().values())
    assert len(passes) >= 5
    for declared in passes:
        assert declared.takes in KINDS and declared.makes in KINDS
        assert step_title(declared.step) == declared.title != declared.step
        assert step_phrase(declared.step) == declared.phrase
    assert len({p.step for p in passes}) == len(passes)  # one step per pass


def test_a_chain_runs_through_compress_and_leaves_only_what_was_asked(tmp_path, tiny_bert_folder,
                                                            clinc_dir):
    from slimformer.compression.variants import make_variants
    from slimformer.data.args import DataArguments

    args = CompressArguments(model=str(tiny_bert_folder), output_dir=str(tmp_path / "out"),
                             variants=["onnx > O1 > int8", "onnx"], speedup_queries=10,
                             calibration_rows=16, min_speedup=0.0)
    made = make_variants(args, DataArguments(data_file=str(clinc_dir), max_samples=40),
                         threads=1)
    assert set(made) == {"onnx > O1 > int8", "onnx"} or set(made) == {"onnx"}
    if "onnx > O1 > int8" in made:  # kept only when not slower than onnx > int8
        folder = made["onnx > O1 > int8"]
        assert folder.name == "tiny-bert-onnx-O1-int8"
        steps = [s["step"] for s in read_provenance(folder)["steps"]]
        assert steps == ["onnx-export", "onnx-optimize", "onnx-quantize-dynamic"]
    # the export both chains start with went into the folder asked for; the O1 graph and
    # the plain int8 it was compared with stayed in the run's scratch folder
    assert made["onnx"] == Path(args.output_dir) / "tiny-bert-onnx"
    assert sorted(p.name for p in Path(args.output_dir).iterdir()) == sorted(
        p.name for p in made.values())


def rounds(*p50s: float) -> dict[str, float]:
    """A graph's timing as the benchmark reports it: the median of its round p50s, and their
    range."""
    return {"p50": sorted(p50s)[len(p50s) // 2], "p50_min": min(p50s), "p50_max": max(p50s)}


@pytest.mark.parametrize(("fused", "plain", "kept"), [
    # the 4-layer student's fused int8 on a busy AMD run: 1.46x by the medians, ranges overlap
    (rounds(1.68, 1.42, 2.30), rounds(2.45, 2.21, 2.60), True),
    (rounds(1.00, 0.98, 1.02), rounds(1.50, 1.45, 1.55), True),  # ranges apart
    (rounds(1.00, 0.90, 1.20), rounds(1.01, 0.95, 1.10), False),  # 1.01x: under 1.03
    (rounds(2.00, 1.90, 2.10), rounds(1.00, 0.95, 1.05), False),  # measurably slower
])
def test_a_fused_graph_is_kept_by_its_median_unless_measurably_slower(fused, plain, kept):
    from slimformer.compression.variants import keeps_fused
    from slimformer.serving.timing import speed_check

    check = speed_check(fused, plain)  # as compare_folders reports it
    assert keeps_fused(check, min_speedup=1.03) is kept
    # a measurably slower graph is dropped even where the minimum speedup allows anything
    assert keeps_fused(check, min_speedup=0.0) is (check["verdict"] != "slower")


def test_compress_benchmarks_the_int8_its_passes_make_fastest():
    from slimformer.compression.variants import benchmark_specs, best_int8

    def best(*keys):
        found = best_int8({k: Path(f"/m/{i}") for i, k in enumerate(keys)})
        return None if found is None else keys[int(found.name)]

    # by passes, not by name: a spelled chain counts as its alias does
    assert best("onnx-int8", "onnx > O2 > int8", "onnx") == "onnx > O2 > int8"
    assert best("onnx-int8-static", "onnx-int8") == "onnx-int8"
    assert best("onnx > emb4 > int8", "onnx-int8-static") == "onnx > emb4 > int8"
    assert best("onnx", "torch-int8", "onnx > O2") is None  # none quantizes an ONNX graph
    specs = benchmark_specs("/m/src", {"onnx": Path("/m/a"), "onnx-int8": Path("/m/b")})
    assert specs == ["source=/m/src", "onnx=/m/a", "onnx-int8=/m/b", "b-lean=/m/b@onnx-lean",
                     "b-pipeline=/m/b@onnx-pipeline"]
