"""Optuna search over distillation hyperparameters through `Trainer.hyperparameter_search`.

The study lives in an Optuna RDB storage (a SQLite file by default), so an interrupted search
resumes where it stopped without re-running finished trials, and several workers can share
one study. A median pruner stops weak trials at their epoch-end evaluations.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import optuna
import yaml

from slimformer.data.args import DataArguments
from slimformer.errors import fail, first_line
from slimformer.training.args import DistillArguments, DistillationTrainingArguments
from slimformer.training.distill_run import build_distillation
from slimformer.urls import safe_url, with_encoded_credentials, without_password

logger = logging.getLogger(__name__)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# Training arguments worth carrying into the best-parameters YAML (the rest keep defaults).
TRAINING_KEYS = ("output_dir", "learning_rate", "num_train_epochs", "alpha", "temperature",
                 "soft_loss", "per_device_train_batch_size", "per_device_eval_batch_size",
                 "weight_decay", "warmup_ratio", "hidden_weight", "attention_weight",
                 "eval_strategy", "save_strategy", "save_total_limit", "logging_steps",
                 "max_steps", "seed", "report_to", "use_cpu", "fp16", "bf16")


@dataclass
class SearchArguments:
    n_trials: int = field(default=10, metadata={"help": "finished trials the study should hold"})
    storage: str | None = field(
        default=None, metadata={"help": "Optuna RDB URL; default sqlite:///OUTPUT/study.db. "
                                "Share one URL (PostgreSQL/MySQL) across machines"})
    study_name: str = field(default="slimformer-distill")
    load_if_exists: bool = field(default=True, metadata={"help": "resume an existing study"})
    search_dir: str = field(default="outputs/search", metadata={"help": "study, plots, YAML"})
    min_epochs: int = 5
    max_epochs: int = 10
    min_learning_rate: float = 1e-5
    max_learning_rate: float = 1e-4
    max_hidden_weight: float = field(default=0.0, metadata={
        "help": "search hidden_weight in [0, this] (0: not searched)"})
    max_attention_weight: float = field(default=0.0, metadata={
        "help": "search attention_weight in [0, this] (0: not searched)"})
    pruner_warmup_epochs: int = field(default=1, metadata={"help": "epochs before pruning"})
    heartbeat_interval: int = field(default=60, metadata={
        "help": "seconds between a running trial's heartbeats in the study; a trial whose "
                "worker died (kill -9, lost machine) is marked failed after grace_period"})
    grace_period: int | None = field(default=None, metadata={
        "help": "seconds without a heartbeat before a trial counts as dead (default: 2x the "
                "heartbeat interval)"})
    max_retry: int = field(default=3, metadata={
        "help": "times a dead worker's trial is queued again with the same parameters"})
    final_run: bool = field(default=True, metadata={"help": "train the student with the best "
                                                    "parameters afterwards"})
    overwrite: bool = field(default=False, metadata={
        "help": "write into a --search_dir that holds files an earlier search did not write"})


def check_search_dir(args: SearchArguments) -> None:
    """Refuse a search folder that holds files no earlier search wrote (a user's
    best_params.yaml, say), before any work."""
    from slimformer.files import check_target

    check_target(args.search_dir, "search", args.overwrite, "--overwrite true")


def claim_search_dir(args: SearchArguments) -> Path:
    """The search's folder, created and marked as a search's, so a resumed search may use it
    again."""
    from slimformer.files import write_marker

    folder = Path(args.search_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_marker(folder, "search")
    return folder


def storage_url(args: SearchArguments) -> str:
    if args.storage:
        return args.storage
    return f"sqlite:///{claim_search_dir(args) / 'study.db'}"


def heartbeat_options(interval: int | None, grace_period: int | None,
                      max_retry: int) -> dict[str, Any]:
    """RDBStorage's heartbeat settings: a dead worker's trial is failed and queued again."""
    if not interval:
        return {}
    options: dict[str, Any] = {"heartbeat_interval": interval,
                               "grace_period": grace_period or 2 * interval}
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if retry is not None:  # optuna >= 4.9
        options["heartbeat_stale_trial_callback"] = retry(max_retry=max_retry)
    else:
        options["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(
            max_retry=max_retry)
    return options


def open_storage(url: str, attempts: int = 5, heartbeat_interval: int | None = None,
                 grace_period: int | None = None, max_retry: int = 3,
                 ) -> optuna.storages.BaseStorage:
    """Open the study storage up front, so a bad URL fails before any training.

    With a heartbeat, a trial whose worker died is marked failed once its heartbeat is older
    than the grace period (by the next worker that starts a trial), and queued again with the
    same parameters (RetryFailedTrialCallback). Workers started together may race to create
    the schema; the loser retries.
    """
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # the heartbeat API is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    with_encoded_credentials(url),
                    **heartbeat_options(heartbeat_interval, grace_period, max_retry))
        except ImportError as err:  # optuna wraps the driver's ModuleNotFoundError
            scheme = url.split(":", 1)[0]
            extra = "mysql" if scheme.startswith("mysql") else "postgres"
            fail(f"the database driver for {scheme!r} is not installed: "
                 f"pip install 'slimformer[{extra}]' ({first_line(err)})")
        except Exception as err:
            racing = any(m in str(err) for m in ("UNIQUE constraint", "already exists",
                                                  "database is locked", "duplicate key"))
            if attempt + 1 < attempts and racing:
                time.sleep(0.5 * (attempt + 1))
                continue
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            fail(f"cannot open the search storage {safe_url(url)!r}: "
                 f"{without_password(reason, url)}")
    raise AssertionError("unreachable")


def finished_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def hp_space(args: SearchArguments):
    """The book's space (epochs 5-10, alpha 0-1, temperature 2-20) plus the learning rate and,
    where asked, the layer-loss weights."""
    def space(trial: optuna.Trial) -> dict[str, Any]:
        layer_weights = {
            f"{name}_weight": trial.suggest_float(f"{name}_weight", 0.0, top)
            for name, top in (("hidden", args.max_hidden_weight),
                              ("attention", args.max_attention_weight)) if top > 0}
        return {**layer_weights,
            "num_train_epochs": trial.suggest_int("num_train_epochs", args.min_epochs,
                                                  args.max_epochs),
            "alpha": trial.suggest_float("alpha", 0.0, 1.0),
            "temperature": trial.suggest_float("temperature", 2.0, 20.0),
            "learning_rate": trial.suggest_float("learning_rate", args.min_learning_rate,
                                                 args.max_learning_rate, log=True),
        }
    return space


def validation_accuracy(metrics: dict[str, float]) -> float:
    return metrics["eval_accuracy"]


def run_search(search: SearchArguments, args: DistillArguments, data_args: DataArguments,
               training_args: DistillationTrainingArguments) -> optuna.Study:
    """Run trials until the study holds `n_trials` finished ones; returns the study."""
    if search.n_trials < 1:
        fail(f"n_trials must be at least 1, got {search.n_trials}")
    check_search_dir(search)
    if search.final_run:
        from slimformer.training.run_folder import check_owner

        check_owner(training_args, "distill")
    url = storage_url(search)
    storage = open_storage(url, heartbeat_interval=search.heartbeat_interval,
                           grace_period=search.grace_period, max_retry=search.max_retry)
    claim_search_dir(search)
    if search.load_if_exists is False and finished_trials(storage, search.study_name):
        fail(f"study {search.study_name!r} already exists in {safe_url(url)}; set "
             "load_if_exists true")
    if training_args.eval_strategy == "no":
        fail("the search needs eval_strategy epoch (or steps) so trials can be pruned")
    remaining = max(0, search.n_trials - finished_trials(storage, search.study_name))
    # The trials' scratch (checkpoints) lives in the search's own folder; --output_dir is the
    # final run's, checked now as that run will check it.
    trials_args = copy.copy(training_args)
    trials_args.output_dir = str(Path(search.search_dir) / "trials")
    run = build_distillation(args, data_args, trials_args, for_search=True)
    if training_args.should_save:
        logger.info("study %r in %s: %d trial(s) to run", search.study_name, safe_url(url),
                    remaining)
    run.trainer.hyperparameter_search(
        hp_space=hp_space(search), compute_objective=validation_accuracy, n_trials=remaining,
        direction="maximize", backend="optuna", storage=storage,
        study_name=search.study_name, load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2,
                                           n_warmup_steps=search.pruner_warmup_epochs),
    )
    return optuna.load_study(study_name=search.study_name, storage=storage)


def plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def best_config(study: optuna.Study, args: DistillArguments, data_args: DataArguments,
                training_args: DistillationTrainingArguments) -> dict[str, Any]:
    """A config `recipes/distill.py --config` accepts: this run's settings, best parameters."""
    config: dict[str, Any] = {}
    for instance in (args, data_args):
        config.update({k: plain(v) for k, v in vars(instance).items() if v is not None})
    for key in TRAINING_KEYS:
        config[key] = plain(getattr(training_args, key))
    config.update(study.best_trial.params)
    return config


def write_search_outputs(study: optuna.Study, config: dict[str, Any],
                         folder: str | Path) -> dict[str, Path]:
    """best_params.yaml, trials.csv/md and Optuna's history and importance plots (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"yaml": out / "best_params.yaml", "csv": out / "trials.csv",
             "md": out / "trials.md", "history": out / "optimization_history.png",
             "importance": out / "param_importances.png"}
    paths["yaml"].write_text(
        f"# Best of {len(study.trials)} trials: validation accuracy {study.best_value:.4f}\n"
        + yaml.safe_dump(config, sort_keys=False))
    table = study.trials_dataframe(attrs=("number", "value", "params", "state", "duration"))
    table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(table.to_markdown(index=False) if _has_tabulate()
                           else table.to_string(index=False))
    optuna_plots.plot_optimization_history(study)
    plt.gcf().set_size_inches(8, 5)
    plt.savefig(paths["history"], dpi=100, bbox_inches="tight")
    plt.close("all")
    completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(completed) >= 2:
        optuna_plots.plot_param_importances(study)
        plt.gcf().set_size_inches(8, 5)
        plt.savefig(paths["importance"], dpi=100, bbox_inches="tight")
        plt.close("all")
    else:
        del paths["importance"]  # importance needs at least two completed trials
    return paths


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
