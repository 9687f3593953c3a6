import numpy as np

from slimformer.serving.registry import load_variant


def load_recipe():
    """The step behind `recipes/compress.py`."""
    from slimformer.cli.commands import compress

    return compress


def test_compress_recipe_writes_loadable_variants(tmp_path, tiny_bert_folder, clinc_dir, capsys):
    out = tmp_path / "variants"
    load_recipe().main(["--model", str(tiny_bert_folder), "--output_dir", str(out),
                        "--data_file", str(clinc_dir), "--variants", "torch-int8", "onnx-int8",
                        "--calibration_rows", "32"])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["tiny-bert-onnx-int8", "tiny-bert-torch-int8"]  # the export step removed
    texts = ["what is my balance", "play some music"]
    reference = load_variant(str(tiny_bert_folder)).predict_logits(texts)
    for name in names:
        variant = load_variant(str(out / name))
        assert np.array_equal(variant.predict_logits(texts).argmax(-1), reference.argmax(-1))
        assert (out / name / "slimformer.json").is_file()
