"""Every command that writes obeys one rule (issue 23, class 1): a target folder that holds
files this step did not write is refused before any work, with a line naming the flag that
allows it, and nothing in it changes.

The test finds every output flag itself (each command's `*_dir` arguments), so a new command
or a new output flag that is not in WRITERS fails here until it is checked like the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import re

import pytest

from slimformer.errors import run_recipe

from .test_bad_input import (
    BENCH,
    COMPRESS,
    DISTILL,
    FINETUNE,
    OPTIMIZE,
    PRUNE,
    PUSH,
    RECIPES,
    TRIM,
    tree_hash,
    workspace,  # noqa: F401 (the fixture)
)

# Arguments named *_dir that are not output folders, and why.
NOT_OUTPUTS = {
    "cache_dir": "adds teacher-logit files named by their content; never replaces a file",
    "logging_dir": "TensorBoard's, written only with --report_to tensorboard",
    "overwrite_output_dir": "the flag that allows replacing an output, not a folder",
}
# Commands that write nothing.
READ_ONLY = {"serve": "answers requests; writes no file"}

MINE = "{root}/my-results"  # holds the user's report.md and best_params.yaml
SEARCH = ["--eval_strategy", "epoch", "--n_trials", "1"]


def pointed(argv: list[str], flag: str) -> list[str]:
    """`argv` with `--flag` pointed at the user's folder (added when absent)."""
    argv = list(argv)
    if f"--{flag}" in argv:
        argv[argv.index(f"--{flag}") + 1] = MINE
        return argv
    return [*argv, f"--{flag}", MINE]


WRITERS = {
    ("benchmark", "output_dir"): BENCH,
    # compress's output_dir holds one folder per variant (by default beside the model): the
    # rule applies to each of them, so the user's folder is a variant's ({root}/compressed/
    # good-model-onnx-int8, with a notes.txt of the user's)
    ("compress", "output_dir"): [*COMPRESS, "--variants", "onnx-int8"],
    ("distill", "output_dir"): DISTILL,
    ("distill_speed", "output_dir"): DISTILL,
    ("finetune", "output_dir"): FINETUNE,
    ("optimize", "output_dir"): OPTIMIZE,
    ("prune", "output_dir"): PRUNE,
    ("prune", "onnx_dir"): [*PRUNE, "--onnx_dir", "{root}/onnx-here"],
    ("push", "dry_run_dir"): PUSH,
    ("search", "output_dir"): [*DISTILL, "--search_dir", "{root}/s", *SEARCH],
    ("search", "search_dir"): [*DISTILL, *SEARCH],
    ("trim_vocab", "output_dir"): TRIM,
    ("loadtest", "output_dir"): ["http://127.0.0.1:9", "--data_file", "{data}"],
}


def output_flags(command: str) -> set[str]:
    module = importlib.import_module(f"slimformer.cli.commands.{command}")
    if hasattr(module, "ARGUMENTS"):
        names = {f.name for t in module.ARGUMENTS for f in dataclasses.fields(t)}
    else:  # a light command with its own argparse parser
        names = {a.dest for a in module.build_parser()._actions}
    return {n for n in names if n.endswith("_dir") and n not in NOT_OUTPUTS}


def test_every_output_flag_of_every_command_is_checked():
    commands = {p.stem for p in RECIPES.glob("*.py")}
    found = {(c, flag) for c in commands - set(READ_ONLY) for flag in output_flags(c)}
    assert found == set(WRITERS), "an output flag is not in WRITERS (or WRITERS is stale)"
    assert all(not output_flags(c) for c in READ_ONLY)


@pytest.mark.parametrize(("command", "flag"), sorted(WRITERS),
                         ids=[f"{c}-{f}" for c, f in sorted(WRITERS)])
def test_a_users_folder_is_refused_by_every_writer(command, flag, workspace,  # noqa: F811
                                                   capsys, monkeypatch):
    monkeypatch.chdir(workspace["root"])
    if command == "compress":  # (see WRITERS)
        argv = [a.format(**workspace) for a in WRITERS[command, flag]]
        mine = workspace["root"] / "compressed" / "good-model-onnx-int8"
        files = ["notes.txt"]
    else:
        argv = [a.format(**workspace) for a in pointed(WRITERS[command, flag], flag)]
        mine = workspace["root"] / "my-results"
        files = ["best_params.yaml", "report.md"]
    before = tree_hash(mine)
    with pytest.raises(SystemExit) as exit_info:
        run_recipe(importlib.import_module(f"slimformer.cli.commands.{command}").main, argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2 and len(errors) == 1, err
    assert re.search(rf"{mine.name} already holds .*(--overwrite\w*( true)?|another --\w+) ",
                     errors[0]), errors[0]
    assert tree_hash(mine) == before
    assert sorted(p.name for p in mine.iterdir()) == files
