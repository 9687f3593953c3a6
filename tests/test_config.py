import importlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from slimformer.cli.config import parse_args, parse_config_file
from slimformer.errors import SlimformerError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@dataclass
class Example:
    name: str = "default"
    rate: float = 0.1
    layers: list[int] = field(default_factory=lambda: [0, 1])
    flag: bool = False


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_values_are_read(tmp_path):
    (args,) = parse_args((Example,), ["--config", write(tmp_path, "name: a\nlayers: [0, 2, 4]\n")])
    assert args.name == "a" and args.layers == [0, 2, 4] and args.rate == 0.1


def test_flags_override_yaml(tmp_path):
    config = write(tmp_path, "name: a\nrate: 0.5\nflag: true\n")
    (args,) = parse_args((Example,), ["--config", config, "--rate", "0.25", "--flag", "false"])
    assert args.name == "a" and args.rate == 0.25 and args.flag is False


def test_unknown_yaml_key_is_named(tmp_path):
    with pytest.raises(SlimformerError, match="unknown key.*raet"):
        parse_args((Example,), ["--config", write(tmp_path, "raet: 0.5\n")])


def test_unknown_flag_is_named():
    with pytest.raises(SlimformerError, match="--bogus"):
        parse_args((Example,), ["--bogus", "1"])


def test_missing_and_malformed_config(tmp_path):
    with pytest.raises(SlimformerError, match="not found"):
        parse_args((Example,), ["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(SlimformerError, match="not valid YAML"):
        parse_args((Example,), ["--config", write(tmp_path, "name: [unclosed\n")])


def recipe_for(yaml_path: Path):
    """`NAME_anything.yaml` configures `recipes/NAME.py`, that is the step `slimformer NAME`
    (the longest recipe name that prefixes it: trim_vocab_*.yaml is trim_vocab.py's)."""
    names = [r.stem for r in RECIPES.glob("*.py") if yaml_path.stem.startswith(r.stem + "_")]
    name = max(names, key=len) if names else yaml_path.stem.split("_")[0]
    path = RECIPES / f"{name}.py"
    assert path.is_file(), f"{yaml_path.name} has no recipe {path.name}"
    return importlib.import_module(f"slimformer.cli.commands.{name}")


@pytest.mark.parametrize("yaml_path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_yaml_parses(yaml_path):
    recipe = recipe_for(yaml_path)
    assert hasattr(recipe, "ARGUMENTS"), f"{recipe.__file__} must define ARGUMENTS"
    parsed = parse_config_file(recipe.ARGUMENTS, yaml_path)
    assert len(parsed) == len(recipe.ARGUMENTS)


@pytest.mark.parametrize("yaml_path", sorted((RECIPES / "accelerate_configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_accelerate_configs_load(yaml_path):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(yaml_path))
    assert config.num_processes >= 1 and config.mixed_precision in ("no", "fp16", "bf16")
