"""Recipe arguments: dataclasses parsed by HfArgumentParser from a YAML file plus flags.

Flags given on the command line override the YAML; a YAML key that no dataclass declares is
an error that names it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from slimformer.errors import fail


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        fail(f"config file not found: {path}")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        fail(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}")
    if not isinstance(content, dict):
        fail(f"config file {path} must hold a mapping of argument names to values")
    return content


def field_names(dataclass_types: tuple[type, ...]) -> set[str]:
    return {f.name for t in dataclass_types for f in dataclasses.fields(t) if f.init}


def check_keys(config: dict[str, Any], dataclass_types: tuple[type, ...], source: str) -> None:
    known = field_names(dataclass_types)
    unknown = sorted(set(config) - known)
    if unknown:
        fail(f"unknown key(s) in {source}: {', '.join(unknown)}")


def parse_args(
    dataclass_types: tuple[type, ...],
    argv: list[str] | None = None,
    description: str | None = None,
) -> tuple[Any, ...]:
    """Parse `--config file.yaml` and flags into one instance per dataclass type."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)

    epilog = "--config FILE.yaml reads arguments from YAML; flags given as well override it."
    parser = HfArgumentParser(dataclass_types, description=description, epilog=epilog)
    if known.config:
        config = read_yaml(known.config)
        check_keys(config, dataclass_types, known.config)
        for action in parser._actions:
            if action.dest in config:
                action.default = config[action.dest]
                action.required = False
    try:
        *instances, remaining = parser.parse_args_into_dataclasses(
            args=rest, return_remaining_strings=True
        )
    except ValueError as err:
        fail(str(err).splitlines()[0])
    if remaining:
        fail(f"unknown argument(s): {' '.join(remaining)}")
    return tuple(instances)


def parse_config_file(dataclass_types: tuple[type, ...], path: str | Path) -> tuple[Any, ...]:
    """Parse a YAML file alone (used by tests to keep every recipe config valid)."""
    return parse_args(dataclass_types, ["--config", str(path)])
