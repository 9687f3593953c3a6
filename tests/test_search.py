
import pytest
import yaml

from slimformer.cli.config import parse_args
from slimformer.data.args import DataArguments
from slimformer.errors import SlimformerError
from slimformer.training.args import DistillArguments, DistillationTrainingArguments
from slimformer.training.search import (
    SearchArguments,
    best_config,
    run_search,
    write_search_outputs,
)

from .conftest import tiny_bert


@pytest.fixture
def teacher_folder(tmp_path, tokenizer):
    folder = tmp_path / "teacher"
    tiny_bert().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def arguments(tmp_path, teacher_folder, clinc_dir, n_trials):
    search = SearchArguments(n_trials=n_trials, search_dir=str(tmp_path / "search"),
                             study_name="test", min_epochs=1, max_epochs=2, final_run=False)
    args = DistillArguments(teacher_model=str(teacher_folder), student_layers=[0],
                            cache_dir=str(tmp_path / "cache"))
    data_args = DataArguments(data_file=str(clinc_dir), max_samples=32, max_length=16)
    training_args = DistillationTrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16,
        eval_strategy="epoch", save_strategy="no", report_to="none", use_cpu=True,
        disable_tqdm=True)
    return search, args, data_args, training_args


def test_search_resumes_without_rerunning_trials(tmp_path, teacher_folder, clinc_dir):
    first = run_search(*arguments(tmp_path, teacher_folder, clinc_dir, n_trials=1))
    assert len(first.trials) == 1
    done = first.trials[0]
    # "interrupted" after one trial: asking for two runs exactly one more
    study = run_search(*arguments(tmp_path, teacher_folder, clinc_dir, n_trials=2))
    assert [t.number for t in study.trials] == [0, 1]
    assert study.trials[0].datetime_start == done.datetime_start
    assert study.trials[0].params == done.params
    assert all(t.state.is_finished() for t in study.trials)
    assert done.intermediate_values  # epoch-end reports that the pruner acts on
    params = study.trials[1].params
    assert 1 <= params["num_train_epochs"] <= 2 and 0 <= params["alpha"] <= 1
    assert 2 <= params["temperature"] <= 20

    search, args, data_args, training_args = arguments(tmp_path, teacher_folder, clinc_dir, 2)
    config = best_config(study, args, data_args, training_args)
    paths = write_search_outputs(study, config, search.search_dir)
    saved = yaml.safe_load(paths["yaml"].read_text())
    assert saved["alpha"] == study.best_trial.params["alpha"]
    assert paths["history"].stat().st_size > 1000 and paths["csv"].is_file()
    # the YAML is a valid distill.py config
    from slimformer.cli.commands import distill as recipe

    _, _, parsed = parse_args(recipe.ARGUMENTS, ["--config", str(paths["yaml"])])
    assert parsed.temperature == study.best_trial.params["temperature"]


def test_unopenable_storage_fails_before_training(tmp_path, teacher_folder, clinc_dir):
    search, *rest = arguments(tmp_path, teacher_folder, clinc_dir, 1)
    search.storage = f"sqlite:///{tmp_path}/no/such/dir/study.db"
    with pytest.raises(SlimformerError, match="cannot open the search storage"):
        run_search(search, *rest)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url,shown", [
    ("postgresql://alice:s3cret@127.0.0.1:5432/optuna",
     "postgresql://alice:***@127.0.0.1:5432/optuna"),
    ("postgresql://alice:p@ss@db.example:5432/optuna",
     "postgresql://alice:***@db.example:5432/optuna"),
    ("postgresql://:only-a-password@db:5432/optuna", "postgresql://:***@db:5432/optuna"),
    ("mysql+pymysql://bob:a:b/c@db:3306/x", "mysql+pymysql://bob:***@db:3306/x"),
    ("postgresql://alice:p%40ss@db/optuna", "postgresql://alice:***@db/optuna"),
    ("postgresql://alice@db/optuna", "postgresql://alice@db/optuna"),
    ("sqlite:///outputs/study.db", "sqlite:///outputs/study.db")])
def test_storage_passwords_never_show(url, shown):
    from slimformer.urls import safe_url, url_password, without_password

    assert safe_url(url) == shown
    password = url_password(url)
    if password:
        assert password not in safe_url(url)
        message = without_password(f"could not connect to {url} (password {password!r})", url)
        assert password not in message and shown in message
