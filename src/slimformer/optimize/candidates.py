"""The optional candidates of an optimize run: an Optuna search over the distillation settings
(the students then train with its best parameters), pruned and vocabulary-trimmed models.

The search's study lives in `run/search-study.db` (SQLite) or `--search_storage` (e.g. a
PostgreSQL URL that runs on several machines share), outside the step folder, so a killed
search resumes with its finished trials; its study name carries the step's settings, so
changed settings start a fresh study instead of mixing trials, and the same settings on
another machine join the same study.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from slimformer.data.args import DataArguments
from slimformer.optimize.args import OptimizeArguments
from slimformer.optimize.steps import Step
from slimformer.optimize.training_steps import (
    SEARCH_STEP,
    soft_loss_fingerprint,
    training_arguments,
)

logger = logging.getLogger(__name__)

def search_step(layers: list[int], teacher: str, depends: list[str], args: OptimizeArguments,
                data_args: DataArguments, run: Path) -> Step:
    from slimformer.training.run_folder import data_identity

    settings = {"teacher": teacher, "layers": layers, "trials": args.search_trials,
                "epochs": args.search_epochs, "max_hidden_weight": args.max_hidden_weight,
                "max_attention_weight": args.max_attention_weight,
                "seed": args.training_seed, **data_identity(data_args)}
    settings.update(soft_loss_fingerprint(args))
    study = "optimize-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()
                                         ).hexdigest()[:12]

    def search(folder: Path) -> None:
        from slimformer.training.args import DistillArguments
        from slimformer.training.search import (
            SearchArguments,
            best_config,
            run_search,
            write_search_outputs,
        )

        search_args = SearchArguments(
            n_trials=args.search_trials,
            storage=args.search_storage or f"sqlite:///{run / 'search-study.db'}",
            study_name=study, search_dir=str(folder), min_epochs=args.search_epochs,
            max_epochs=args.search_epochs, min_learning_rate=args.learning_rate / 3,
            max_learning_rate=args.learning_rate * 3, max_hidden_weight=args.max_hidden_weight,
            max_attention_weight=args.max_attention_weight, pruner_warmup_epochs=0,
            final_run=False)
        distill_args = DistillArguments(teacher_model=teacher, student_layers=layers,
                                        cache_dir=str(run / "cache"))
        training = training_arguments(folder / "trials", args, args.search_epochs,
                                      eval_strategy="epoch")
        found = run_search(search_args, distill_args, data_args, training)
        write_search_outputs(found, best_config(found, distill_args, data_args, training),
                             folder)

    return Step(SEARCH_STEP, run / SEARCH_STEP, settings, search, depends,
                estimate_min=2.5 * args.search_trials * args.search_epochs)


def pruned_name(model: str, level: float) -> str:
    return f"{model}-pruned-{round(100 * level)}"


def prune_step(model_name: str, model: str, teacher: str, level: float, depends: list[str],
               args: OptimizeArguments, data_args: DataArguments, run: Path) -> Step:
    """Movement pruning (top-k, whole heads and FFN neurons) of a model to `level`, distilled
    from the teacher and compacted, with its own fallback; its compressed variants come from
    a compress step like every other model's."""
    name = pruned_name(model_name, level)
    epochs = float(args.setting("prune_epochs"))

    def prune_model(folder: Path) -> None:
        from slimformer.compression.pruning.args import PruningArguments
        from slimformer.compression.pruning.run import PruneRunArguments, prune
        from slimformer.models.architectures import architecture_of
        from slimformer.models.loading import load_model_config
        from slimformer.training.args import ModelArguments

        # Where heads cannot be removed (relative-position attention), FFN neurons only.
        heads = not architecture_of(load_model_config(model), "pruning").no_head_removal
        result = prune(
            ModelArguments(model_name_or_path=model), data_args,
            PruneRunArguments(teacher_model_name_or_path=teacher, cache_dir=str(run / "cache")),
            PruningArguments(pruning_method="topk", attention_block="head",
                             final_sparsity=level, cooldown_fraction=0.35,
                             prune_attention=heads),
            training_arguments(folder, args, epochs, alpha=args.setting("alpha"),
                               temperature=args.setting("temperature")))
        logger.info("%s: %s heads, %s neurons kept", name, result["sparsity"]["heads_kept"],
                    result["sparsity"]["neurons_kept"])

    from slimformer.training.run_folder import data_identity

    settings = {"model": model, "teacher": teacher, "level": level, "epochs": epochs,
                "alpha": args.setting("alpha"), "temperature": args.setting("temperature"),
                "lr": args.learning_rate,
                "seed": args.training_seed, **data_identity(data_args)}
    settings.update(soft_loss_fingerprint(args))
    return Step(name, run / name, settings, prune_model, depends,
                estimate_min=1.5 * epochs + 1.0)


def trim_step(model_name: str, model: str, depends: list[str], args: OptimizeArguments,
              data_args: DataArguments, run: Path) -> Step:
    """The model with its vocabulary trimmed to the training split's word pieces."""
    from slimformer.training.run_folder import data_identity

    name = f"{model_name}-trimmed"

    def trim(folder: Path) -> None:
        from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary

        trim_vocabulary(TrimVocabArguments(model=model, output_dir=str(folder),
                                           keep_characters=args.trim_characters), data_args)

    settings = {"model": model, "characters": args.trim_characters, **data_identity(data_args)}
    return Step(name, run / name, settings, trim, depends, estimate_min=0.3)
