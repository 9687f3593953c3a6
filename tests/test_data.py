import json
import subprocess
import sys

import datasets
import pytest
from datasets import Dataset, DatasetDict

from slimformer.data import clinc as data
from slimformer.data.clinc import label_names, load_clinc, load_raw_json, validate_clinc
from slimformer.errors import SlimformerError

from .conftest import REPO


def test_plus_splits_sizes_and_labels(clinc):
    assert {s: len(clinc[s]) for s in data.SPLITS} == {
        "train": 15250, "validation": 3100, "test": 5500}
    intent = clinc["train"].features["intent"]
    assert intent.num_classes == 151 and intent.int2str(42) == "oos"
    assert set(clinc["train"].column_names) == {"text", "intent"}
    assert sum(1 for i in clinc["test"]["intent"] if i == 42) == 1000


def test_full_config_from_folder(clinc_dir):
    full = load_clinc(clinc_dir, "full")
    assert [len(full[s]) for s in data.SPLITS] == [15100, 3100, 5500]


def test_label_order_is_the_hubs(clinc_dir):
    hub_order = (clinc_dir / "hub_label_order.txt").read_text().split()
    assert label_names() == hub_order
    assert data.id2label()[42] == "oos" and data.label2id()["change_volume"] == 150
    assert data.label_config()["num_labels"] == 151


def hub_shaped(clinc_dir) -> DatasetDict:
    """What `load_dataset("clinc_oos", "plus")` returns: same columns, ClassLabel `intent`."""
    raw = json.loads((clinc_dir / "data_oos_plus.json").read_text())
    order = (clinc_dir / "hub_label_order.txt").read_text().split()
    features = datasets.Features({"text": datasets.Value("string"),
                                  "intent": datasets.ClassLabel(names=order)})
    splits = {}
    for split, keys in data.RAW_SPLITS.items():
        rows = [row for key in keys for row in raw[key]]
        splits[split] = Dataset.from_dict(
            {"text": [t for t, _ in rows], "intent": [order.index(i) for _, i in rows]},
            features=features)
    return DatasetDict(splits)


def test_hub_and_local_sources_agree(monkeypatch, clinc, clinc_dir):
    calls = []

    def fake_load_dataset(name, config):  # the Hub is unreachable here: stand in at its boundary
        calls.append((name, config))
        return hub_shaped(clinc_dir)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    hub = load_clinc(None, "plus")
    assert calls == [("clinc_oos", "plus")]
    for split in data.SPLITS:
        assert len(hub[split]) == len(clinc[split])
        assert hub[split].features == clinc[split].features
        assert sorted(zip(hub[split]["text"], hub[split]["intent"])) == sorted(
            zip(clinc[split]["text"], clinc[split]["intent"]))


def test_unreachable_hub_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'clinc_oos' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SlimformerError, match="--data_file") as err:
        load_clinc(None)
    assert "\n" not in str(err.value)


def test_max_samples_subsets_every_split(clinc_dir):
    small = load_clinc(clinc_dir, max_samples=50)
    assert [len(small[s]) for s in data.SPLITS] == [50, 50, 50]


@pytest.fixture
def raw(clinc_dir):
    return json.loads((clinc_dir / "data_oos_plus.json").read_text())


def write(tmp_path, content, text=None):
    path = tmp_path / "clinc.json"
    path.write_text(text if text is not None else json.dumps(content))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(SlimformerError, match="not found.*nope.json"):
        load_clinc(tmp_path / "nope.json")


def test_malformed_json(tmp_path):
    with pytest.raises(SlimformerError, match="malformed JSON.*line 1"):
        load_clinc(write(tmp_path, None, text='{"train": [["hi", "oos"]'))


def test_unknown_intent_is_named(tmp_path, raw):
    raw["test"][3] = ["play some jazz", "play_jazz_loudly"]
    with pytest.raises(SlimformerError, match="unknown intent.*play_jazz_loudly"):
        load_clinc(write(tmp_path, raw))


def test_missing_split_is_named(tmp_path, raw):
    del raw["oos_val"]
    with pytest.raises(SlimformerError, match="no split 'oos_val'"):
        load_clinc(write(tmp_path, raw))


def test_bad_row_is_named(tmp_path, raw):
    raw["train"][7] = {"text": "hi"}
    with pytest.raises(SlimformerError, match="row 7 of split 'train'"):
        load_raw_json(write(tmp_path, raw))


def test_wrong_columns(clinc):
    renamed = DatasetDict({s: clinc[s].rename_column("intent", "label") for s in data.SPLITS})
    with pytest.raises(SlimformerError, match="expected 'text' and 'intent'"):
        validate_clinc(renamed)
    with pytest.raises(SlimformerError, match="no split.*validation"):
        validate_clinc(DatasetDict({"train": clinc["train"], "test": clinc["test"]}))


def test_wrong_label_order(clinc):
    shuffled = datasets.ClassLabel(names=list(reversed(label_names())))
    bad = DatasetDict({s: clinc[s].cast_column("intent", shuffled) for s in data.SPLITS})
    with pytest.raises(SlimformerError, match="Hub's order"):
        validate_clinc(bad)


def test_unknown_config():
    with pytest.raises(SlimformerError, match="unknown CLINC150 config 'tiny'"):
        load_clinc(None, "tiny")


def test_tokenize_names_labels(clinc_dir, tokenizer):
    encoded = data.tokenize(load_clinc(clinc_dir, max_samples=8), tokenizer, max_length=16)
    row = encoded["train"][0]
    assert {"input_ids", "attention_mask", "labels"} <= set(row)
    assert len(row["input_ids"]) <= 16


def test_recipe_shows_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "benchmark.py"), "--data_file",
         str(tmp_path / "missing.json"), "--variants", f"x={tmp_path}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --data_file {tmp_path / 'missing.json'}: no such file or folder"]
