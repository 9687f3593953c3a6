"""The transfer set: augmented queries, labelled by the teacher alone."""

import pytest
import torch
import torch.nn.functional as F

from slimformer.data.augment import (
    LABELLED,
    METHODS,
    AugmentSettings,
    augment_split,
)
from slimformer.errors import SlimformerError
from slimformer.training.distill import TEACHER_LOGITS, distillation_loss
from slimformer.training.distill_run import build_distillation, distill
from slimformer.training.neighbours import embedding_neighbours

from .test_distill import NO_DROPOUT, setup, teacher_folder  # noqa: F401 (fixture)

NEIGHBOURS = {"flight": ["flights", "plane"], "book": ["reserve"], "paris": ["london"],
              "the": ["a"], "my": ["your"], "what": ["which"], "i": ["we"]}


def settings(**overrides):
    return AugmentSettings(**{"per_query": 3, "methods": METHODS, "seed": 7,
                              "neighbours": NEIGHBOURS, **overrides})


def texts_of(dataset):
    return list(dataset["text"])


def test_same_seed_same_queries_other_seed_others(clinc):
    train = clinc["train"].shuffle(seed=0).select(range(60))  # (train is sorted by intent)
    first, record = augment_split(train, settings())
    again, _ = augment_split(train, settings())
    other, _ = augment_split(train, settings(seed=8))
    assert texts_of(first) == texts_of(again)
    assert texts_of(first) != texts_of(other)
    assert first._fingerprint == again._fingerprint  # the teacher-logit cache key holds
    assert record["added"] == len(first) - 60 > 150 and record["seed"] == 7
    assert set(record["by_method"]) == set(METHODS)
    assert sum(record["by_method"].values()) == record["added"]


def test_augmented_rows_come_after_the_data_and_carry_no_label_flag(clinc):
    train = clinc["train"].shuffle(seed=0).select(range(30))
    augmented, record = augment_split(train, settings())
    assert augmented[LABELLED][:30] == [1] * 30
    assert augmented[LABELLED][30:] == [0] * record["added"]
    assert texts_of(augmented)[:30] == texts_of(train)
    originals = set(texts_of(train))
    assert not originals & set(texts_of(augmented)[30:]), "an augmented query is a copy"


def test_never_an_empty_query_even_from_one_word_queries():
    from datasets import Dataset

    from slimformer.data.clinc import features

    short = Dataset.from_dict({"text": ["hi", "a", "flight", "x y", "   ", "book paris"],
                               "intent": [1, 2, 3, 4, 5, 6]}, features=features())
    for method in METHODS:
        augmented, _ = augment_split(short, settings(methods=(method,), per_query=5))
        new = texts_of(augmented)[len(short):]
        assert all(text.strip() for text in new), method


def test_each_method_does_what_it_says(clinc):
    from datasets import Dataset

    from slimformer.data.clinc import features

    data = Dataset.from_dict({"text": ["book a flight to paris on monday please"] * 2,
                              "intent": [3, 9]}, features=features())
    words = "book a flight to paris on monday please".split()
    for method in METHODS:
        augmented, _ = augment_split(data, settings(methods=(method,), per_query=4))
        for text in texts_of(augmented)[2:]:
            new = text.split()
            if method == "dropout":
                assert len(new) < len(words) and all(w in words for w in new)
            elif method == "mask":
                assert "[UNK]" in new and len(new) == len(words)
            elif method == "swap":
                assert sorted(new) == sorted(words) and new != words
            elif method == "ngram":
                assert 1 <= len(new) <= 5 and " ".join(new) in " ".join(words)
            elif method == "neighbour":
                assert len(new) == len(words) and set(new) - set(words) <= {
                    "flights", "plane", "reserve", "london", "a"}
            elif method == "splice":  # halves of two queries of different labels
                assert new[:4] == words[:4]


def test_only_the_training_split_grows(tmp_path, teacher_folder, clinc_dir):  # noqa: F811
    plain = build_distillation(*setup(tmp_path / "a", teacher_folder, clinc_dir))
    args, data_args, training_args = setup(tmp_path / "b", teacher_folder, clinc_dir)
    args.augment = 2
    run = build_distillation(args, data_args, training_args)
    for split in ("validation", "test"):
        assert run.encoded[split]["input_ids"] == plain.encoded[split]["input_ids"]
        assert LABELLED not in run.encoded[split].column_names
    assert len(run.encoded["train"]) == 48 + run.augmented["added"]
    assert run.augmented["added"] > 48
    assert len(run.encoded["train"][TEACHER_LOGITS]) == len(run.encoded["train"])


def test_augmented_rows_bring_no_hard_label_into_the_loss():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 151), torch.randn(6, 151)
    labels = torch.tensor([1, 42, 7, 3, 3, 3])
    labelled = torch.tensor([1, 1, 1, 0, 0, 0])
    loss = distillation_loss(student, teacher, labels, 0.4, 3.0, labelled)
    relabelled = distillation_loss(student, teacher, torch.tensor([1, 42, 7, 99, 0, 150]),
                                   0.4, 3.0, labelled)
    assert loss.item() == relabelled.item()
    kl = F.kl_div(F.log_softmax(student / 3, -1), F.softmax(teacher / 3, -1),
                  reduction="batchmean")
    expected = 0.4 * F.cross_entropy(student[:3], labels[:3]) + 0.6 * 9 * kl
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    only_augmented = distillation_loss(student, teacher, labels, 0.4, 3.0, torch.zeros(6))
    assert only_augmented.item() == pytest.approx(0.6 * 9 * kl.item(), rel=1e-6)


def test_trainer_loss_ignores_the_labels_of_augmented_rows(tmp_path, teacher_folder,  # noqa: F811
                                                          clinc_dir):
    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir)
    args.augment = 1
    trainer = build_distillation(args, data_args, training_args).trainer
    trainer.model.train()
    torch.manual_seed(0)
    batch = next(iter(trainer.get_train_dataloader()))
    assert LABELLED in batch and 0 < int(batch[LABELLED].sum()) < len(batch[LABELLED])
    trainer.model.eval()  # no dropout: two passes give the same logits
    trainer.model.training = True  # compute_loss's training path

    def loss(labels):
        return trainer.compute_loss(trainer.model, {**batch, "labels": labels}).item()

    changed = batch["labels"].clone()
    changed[batch[LABELLED] == 0] = (changed[batch[LABELLED] == 0] + 1) % 151
    assert loss(batch["labels"]) == pytest.approx(loss(changed), abs=1e-6)
    labelled_changed = batch["labels"].clone()
    labelled_changed[batch[LABELLED] == 1] = (labelled_changed[batch[LABELLED] == 1] + 1) % 151
    assert loss(batch["labels"]) != pytest.approx(loss(labelled_changed), abs=1e-4)


def test_distill_with_a_transfer_set_records_it(tmp_path, teacher_folder, clinc_dir):  # noqa: F811
    from slimformer.provenance import read_provenance

    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir)
    args.augment, args.augment_methods = 2, ["mask", "ngram", "neighbour"]
    metrics = distill(args, data_args, training_args)
    assert metrics["test_accuracy"] >= 0
    settings_ = read_provenance(tmp_path / "out")["steps"][-1]["settings"]
    record = settings_["transfer_set"]
    assert record["per_query"] == 2 and record["seed"] == training_args.seed
    assert record["methods"] == ["mask", "ngram", "neighbour"] and record["rows"] == 48
    assert record["added"] == sum(record["by_method"].values()) > 48


def test_augment_needs_a_teacher_and_known_methods(tmp_path, teacher_folder, clinc_dir):  # noqa: F811
    from slimformer.training.args import DistillArguments

    args, data_args, training_args = setup(tmp_path, teacher_folder, clinc_dir)
    args.augment, training_args.alpha = 1, 1.0
    with pytest.raises(SlimformerError, match="need a teacher"):
        build_distillation(args, data_args, training_args)
    with pytest.raises(SlimformerError, match="unknown augmentation method"):
        DistillArguments(augment=1, augment_methods=["synonyms"])
    with pytest.raises(SlimformerError, match="--augment must be a whole number"):
        DistillArguments(augment=-1)


def test_neighbours_come_from_the_embedding_table(tokenizer):
    from .conftest import tiny_bert

    model = tiny_bert(**NO_DROPOUT)
    table = model.get_input_embeddings().weight.data
    ids = {w: tokenizer.convert_tokens_to_ids(w) for w in ("flight", "plane", "bank", "money")}
    table[ids["plane"]] = table[ids["flight"]] * 2  # same direction: cosine 1
    found = embedding_neighbours(model, tokenizer, ["flight plane bank money", "unbelievably"],
                                 k=1)
    assert found["flight"] == ["plane"] and found["plane"] == ["flight"]
    assert set(found) == {"flight", "plane", "bank", "money"}  # one word piece each
