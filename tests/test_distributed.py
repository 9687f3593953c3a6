"""The recipes under several processes: DDP on CPU (gloo) and search workers sharing a study."""

import json
import os
import re
import subprocess
import sys

import optuna
import pytest

from .conftest import REPO, tiny_bert

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("teacher")
    tiny_bert(**NO_DROPOUT).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def distill_args(teacher, clinc_dir, out, batch):
    return ["--teacher_model", str(teacher), "--student_layers", "0", "1",
            "--data_file", str(clinc_dir / "data_oos_plus.json"), "--max_samples", "64",
            "--max_length", "16", "--output_dir", str(out), "--cache_dir", str(out / "cache"),
            "--per_device_train_batch_size", str(batch), "--num_train_epochs", "2",
            "--learning_rate", "1e-3", "--alpha", "0.5", "--temperature", "2",
            "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "7"]


def run(command, cwd):
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=cwd,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_ddp_two_processes_match_one(tmp_path, teacher, clinc_dir):
    recipe = str(REPO / "recipes" / "distill.py")
    single = run([sys.executable, recipe, *distill_args(teacher, clinc_dir, tmp_path / "one", 16)],
                 tmp_path)
    ddp = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", "29531", recipe,
               *distill_args(teacher, clinc_dir, tmp_path / "two", 8)], tmp_path)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    # 2 ranks x 8 rows = one global batch of 16: the same number of optimizer steps
    assert two["global_step"] == one["global_step"] == 8
    # written exactly once: one metrics line printed, one teacher-logit cache, no stray files
    def count(result):
        return sum("test_accuracy" in line for line in result.stdout.splitlines())
    assert count(ddp) == count(single) >= 1  # logs and prints come from rank 0 only
    assert len(list((tmp_path / "two" / "cache").glob("teacher-logits-*.npy"))) == 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
    # same result within tolerance (the two samplers shuffle differently)
    assert two["validation_loss"] == pytest.approx(one["validation_loss"], rel=0.05)


def test_two_search_workers_share_one_study(tmp_path, teacher, clinc_dir):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, str(REPO / "recipes" / "search.py"),
               "--teacher_model", str(teacher), "--student_layers", "0",
               "--data_file", str(clinc_dir / "data_oos_plus.json"), "--max_samples", "32",
               "--max_length", "16", "--storage", storage, "--study_name", "shared",
               "--n_trials", "2", "--min_epochs", "1", "--max_epochs", "1",
               "--final_run", "false", "--per_device_train_batch_size", "16",
               "--eval_strategy", "epoch", "--save_strategy", "no", "--report_to", "none",
               "--use_cpu", "true", "--disable_tqdm", "true"]
    workers = [subprocess.Popen([*command, "--search_dir", str(tmp_path / f"w{i}"),
                                 "--output_dir", str(tmp_path / f"out{i}"),
                                 "--cache_dir", str(tmp_path / f"cache{i}")],
                                env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    planned = 0
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        # Each worker runs what the study still lacks when it starts (2 if both start
        # together, fewer if one starts late): none lost, none run twice.
        planned += int(re.search(r"(\d+) trial\(s\) to run", out).group(1))
    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert 2 <= planned <= 4
    assert len(finished) == len(study.trials) == planned
    assert sorted(t.number for t in study.trials) == list(range(planned))

