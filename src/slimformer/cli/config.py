"""Recipe arguments: dataclasses parsed by HfArgumentParser from a YAML file plus flags.

Flags given on the command line override the YAML; a YAML key that no dataclass declares is
an error that names it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, NoReturn

from transformers import HfArgumentParser

from slimformer.checks import check_arguments
from slimformer.errors import fail


def read_yaml(path: str | Path) -> dict[str, Any]:
    from slimformer.cli.yaml_files import read_config

    return read_config(path)


def field_names(dataclass_types: tuple[type, ...]) -> set[str]:
    return {f.name for t in dataclass_types for f in dataclasses.fields(t) if f.init}


def check_keys(config: dict[str, Any], dataclass_types: tuple[type, ...], source: str) -> None:
    known = field_names(dataclass_types)
    unknown = sorted(set(config) - known)
    if unknown:
        fail(f"unknown key(s) in {source}: {', '.join(unknown)}")


class ArgumentParser(HfArgumentParser):
    """HfArgumentParser whose errors are one line (`error: ...`), like every other error."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see --help)")


def takes_list(dataclass_types: tuple[type, ...]) -> set[str]:
    """The fields whose declared type admits a list (e.g. TrainingArguments' report_to), read
    from the annotations: HfArgumentParser narrows `field.type` in place once it has parsed."""
    names = set()
    for t in dataclass_types:
        hints = typing.get_type_hints(t)
        names |= {f.name for f in dataclasses.fields(t)
                  if "list" in str(hints.get(f.name, f.type)).lower()}
    return names


def yaml_to_flags(config: dict[str, Any], parser: argparse.ArgumentParser,
                  lists: set[str] | None = None, source: str = "the config") -> list[str]:
    """YAML values as command-line flags, so argparse converts and checks them like flags
    (`threads: two` fails as `--threads two` would; a scalar given for a list is one item,
    a list given for a single value is an error naming the key)."""
    actions = {action.dest: action for action in parser._actions}
    flags: list[str] = []
    for key, value in config.items():
        action = actions[key]
        single_list = isinstance(value, list) and action.nargs not in ("+", "*")
        if single_list and lists is not None and key not in lists:
            fail(f"{source}: {key} takes one value, got a list ({str(value)[:60]})")
        if value is None or isinstance(value, dict) or single_list:
            # No flag spells these (e.g. TrainingArguments' report_to: [] or a dict config).
            action.default = value
            action.required = False
            continue
        if action.nargs in ("+", "*"):
            values = value if isinstance(value, list) else [value]
            if not values:
                action.default = []
                action.required = False
                continue
            flags += [f"--{key}", *(str(v) for v in values)]
        else:
            flags += [f"--{key}", str(value)]
    return flags


def parse_args(
    dataclass_types: tuple[type, ...],
    argv: list[str] | None = None,
    description: str | None = None,
    check_inputs: bool = True,
) -> tuple[Any, ...]:
    """Parse `--config file.yaml` and flags into one instance per dataclass type, then check
    every numeric range and path before any work starts."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)

    epilog = "--config FILE.yaml reads arguments from YAML; flags given as well override it."
    parser = ArgumentParser(dataclass_types, description=description, epilog=epilog)
    flags: list[str] = []
    if known.config:
        config = read_yaml(known.config)
        check_keys(config, dataclass_types, known.config)
        flags = yaml_to_flags(config, parser, takes_list(dataclass_types), known.config)
    try:
        *instances, remaining = parser.parse_args_into_dataclasses(
            args=flags + rest, return_remaining_strings=True
        )
    except ValueError as err:
        fail(str(err).splitlines()[0])
    if remaining:
        fail(f"unknown argument(s): {' '.join(remaining)}")
    check_arguments(*instances, inputs=check_inputs)
    return tuple(instances)


def parse_config_file(dataclass_types: tuple[type, ...], path: str | Path) -> tuple[Any, ...]:
    """Parse a YAML file alone (used by tests to keep every recipe config valid); its input
    files may not exist yet (outputs of earlier steps)."""
    return parse_args(dataclass_types, ["--config", str(path)], check_inputs=False)
