"""How a card tells how a variant was made: each provenance step's title, phrase and key
settings (a compression pass declares its own wording), and the one-sentence summary."""

from __future__ import annotations

from typing import Any

from slimformer.hub.report_rows import pass_steps
from slimformer.hub.sanitize import hub_url, public_value

# The training steps' card wording; each compression pass declares its own
# (slimformer.compression.passes).
TRAINING_TITLES = {
    "finetune": "Fine-tuning",
    "distill": "Knowledge distillation",
    "prune": "Pruning",
    "trim-vocab": "Vocabulary trimming (word pieces the training data uses)",
}


# How each step reads in the one-line summary ("... fine-tuned on CLINC150, then ...").
TRAINING_PHRASES = {
    "finetune": "fine-tuned on CLINC150",
    "distill": "distilled from {teacher}",
    "prune": "pruned",
    "trim-vocab": "its vocabulary trimmed to the word pieces of its training data",
}


def step_title(step: str) -> str:
    found = pass_steps().get(step)
    return found.title if found else TRAINING_TITLES.get(step, step)


def step_phrase(step: str) -> str:
    found = pass_steps().get(step)
    return found.phrase if found else TRAINING_PHRASES.get(step, step)


# Settings shown first, under the names the literature uses.
SETTING_NAMES = {"teacher": "teacher", "alpha": "alpha", "temperature": "T",
                 "student_layers": "student layers", "sparsity": "sparsity"}


def format_setting(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_setting(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_setting(v) for v in value) + "]"
    return str(value)


def describe_steps(provenance: dict[str, Any], folders: dict[str, str]) -> list[dict[str, str]]:
    """Each step's title and its settings, the key ones (teacher, alpha, T, sparsity) first."""
    described = []
    for step in provenance.get("steps", []):
        name = step.get("step", "?")
        settings = public_value(step.get("settings") or {}, folders)
        first = [k for k in SETTING_NAMES if k in settings]
        rest = [k for k in settings if k not in SETTING_NAMES]
        parts = [f"{SETTING_NAMES.get(k, k)} = {format_setting(settings[k])}"
                 for k in first + rest]
        described.append({"title": step_title(name), "detail": "; ".join(parts)})
    return described


def base_display(base_model: str | None) -> str:
    return f"[{base_model}]({hub_url(base_model)})" if base_model else "a local checkpoint"


def kind_title(kind: str) -> str:
    from slimformer.serving.kinds import BY_NAME

    return BY_NAME[kind].title if kind in BY_NAME else kind


def summary_sentence(variant: str, kind: str, provenance: dict[str, Any],
                     base_model: str | None, folders: dict[str, str],
                     dataset_name: str | None = None) -> str:
    phrases = []
    for step in provenance.get("steps", []):
        settings = public_value(step.get("settings") or {}, folders)
        phrase = step_phrase(step.get("step", "processed"))
        if dataset_name and step.get("step") == "finetune":
            phrase = f"fine-tuned on {dataset_name}"
        phrases.append(phrase.format(teacher=format_setting(settings.get("teacher", "a teacher"))))
    what = (f"The `{variant}` variant ({kind_title(kind)}) of "
            + (f"a text classifier trained on {dataset_name}" if dataset_name
               else "a CLINC150 intent classifier"))
    if not phrases:
        return f"{what}."
    return f"{what}: {base_display(base_model)}, {', then '.join(phrases)}."
