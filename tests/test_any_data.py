"""Any text-classification data: local files or a Hub id with a text and a label column go
through the same chain as CLINC150 (fine-tune, distill, compress, benchmark, cards)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from slimformer.errors import SlimformerError

INTENTS = ("balance", "transfer", "bill_due", "oos")


def clinc_rows(clinc, split: str, per_label: int) -> list[dict[str, str]]:
    """Real CLINC150 queries of four intents, relabelled by name, as another dataset would be."""
    names = clinc[split].features["intent"].names
    rows, counts = [], dict.fromkeys(INTENTS, 0)
    for text, label in zip(clinc[split]["text"], clinc[split]["intent"]):
        name = names[label]
        if name in counts and counts[name] < per_label:
            counts[name] += 1
            rows.append({"sentence": text, "category": name})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sentence", "category"], delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def intents_folder(folder: Path, clinc, train_per_label: int, test_per_label: int) -> Path:
    """train.csv and test.csv, no validation file (carved out of train)."""
    write_csv(folder / "train.csv", clinc_rows(clinc, "train", train_per_label))
    write_csv(folder / "test.csv", clinc_rows(clinc, "test", test_per_label))
    return folder


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory, clinc) -> Path:
    return intents_folder(tmp_path_factory.mktemp("intents"), clinc, 40, 30)


def data_args(source, **changes):
    from slimformer.data.args import DataArguments

    return DataArguments(**{"dataset": str(source), "text_column": "sentence",
                            "label_column": "category", **changes})


def test_a_folder_of_csv_files_becomes_the_shared_layout(csv_folder):
    from slimformer.data.dataset import label_names, load_data, oos_id_of

    data = load_data(data_args(csv_folder))
    assert list(data) == ["train", "validation", "test"]
    assert label_names(data) == sorted(INTENTS)
    assert oos_id_of(label_names(data), "oos") == sorted(INTENTS).index("oos")
    assert len(data["validation"]) == 16 and len(data["train"]) == 144  # 10% held out
    assert len(data["test"]) == 120
    assert data["test"].column_names == ["text", "intent"]
    first = next(csv.DictReader((csv_folder / "test.csv").open()))
    assert data["test"][0]["text"] == first["sentence"]
    assert label_names(data)[data["test"][0]["intent"]] == first["category"]
    # the held-out rows are fixed: a second load gives the same validation split
    assert load_data(data_args(csv_folder))["validation"]["text"] == data["validation"]["text"]


def test_one_file_and_tsv_are_read_and_split(tmp_path, clinc):
    from slimformer.data.dataset import load_data

    rows = clinc_rows(clinc, "train", 30)
    data = load_data(data_args(write_csv(tmp_path / "all.tsv", rows, "\t")))
    assert sum(len(data[s]) for s in data) == len(rows)
    assert len(data["test"]) == 12 and len(data["validation"]) == 11


def test_jsonl_with_a_classlabel_free_integer_label(tmp_path):
    from slimformer.data.dataset import label_names, load_data

    lines = [json.dumps({"text": f"text number {i}", "label": i % 3}) for i in range(60)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines))
    data = load_data(data_args(tmp_path, text_column="text", label_column="label"))
    assert label_names(data) == ["0", "1", "2"]
    assert data["train"].features["intent"].num_classes == 3


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: write_csv(d / "train.csv", [{"sentence": "a", "category": "x"}] * 30),
     "holds 1 label"),
    (lambda d: (d / "train.csv").write_text("words,category\nhello,x\nbye,y\n"),
     "split 'train' has no column 'sentence'; it has words, category"),
    (lambda d: (d / "notes.txt").write_text("nothing"), "has no train file"),
    (lambda d: (write_csv(d / "train.csv", [{"sentence": "a", "category": "x"}]),
                (d / "test.jsonl").write_text("{}")), "mix formats"),
])
def test_bad_data_gives_one_line(tmp_path, make, message):
    from slimformer.data.dataset import load_data

    make(tmp_path)
    with pytest.raises(SlimformerError, match=message) as caught:
        load_data(data_args(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_hub_id_offline_fails_in_one_line(monkeypatch):
    from slimformer.data.dataset import load_data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SlimformerError, match="could not load dataset 'someone/intents'"):
        load_data(data_args("someone/intents"))
    with pytest.raises(SlimformerError, match="not both"):
        load_data(data_args("x.csv", data_file="y.json"))


# The whole optimize chain on CSV data: tests/test_architectures.py, once per architecture.
