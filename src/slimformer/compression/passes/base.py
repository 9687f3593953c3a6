"""What a pass declares, and chains of passes: parsed, checked and named before any work."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimformer.errors import fail

# Folder kinds a pass takes and makes: a PyTorch model folder, an ONNX one, PyTorch int8.
KINDS = ("pytorch", "onnx", "pytorch-int8")


@dataclass
class PassContext:
    """What a pass may need besides its config: training texts to calibrate on, and whether
    an existing target of the same step may be replaced."""

    texts: list[str] = dataclasses.field(default_factory=list)
    overwrite: bool = False


@dataclass(frozen=True)
class Pass:
    name: str  # as chains spell it: onnx > opt > int8
    config: type  # a dataclass whose __post_init__ checks its values
    takes: str  # the kind of folder it reads
    makes: str  # the kind of folder it writes
    step: str  # the provenance step it records in slimformer.json
    title: str  # the card's heading for that step
    phrase: str  # how the card's summary says it ("quantized to int8 by ...")
    run: Callable[[Path, Path, Any, PassContext], Any]  # (source, target, config, context)
    tags: tuple[str, ...] = ()  # Hub tags of every variant it took part in
    quantizes: bool = False  # its weights are integers afterwards (base_model_relation)
    spellings: tuple[str, ...] = ()  # other names in a chain, each a config (e.g. O1-O4)
    not_after: tuple[str, ...] = ()  # passes (or spellings) that must not come before it

    def configure(self, settings: Any, spelled: str | None = None) -> Any:
        """The pass's config from a run's settings (fields of the same name), checked."""
        build = getattr(self.config, "from_settings", None)
        if build is not None:
            return build(settings, spelled or self.name)
        names = {f.name for f in dataclasses.fields(self.config)}
        return self.config(**{n: getattr(settings, n) for n in names if hasattr(settings, n)})

    def label(self, config: Any) -> str:
        """Its part of a variant folder's name (the opt pass: its level, O2)."""
        return getattr(config, "label", None) or self.name


def registry() -> dict[str, Pass]:
    """Every registered pass by each of its spellings."""
    from slimformer.compression.passes import REGISTERED

    found: dict[str, Pass] = {}
    for module in REGISTERED:
        declared = importlib.import_module(module).PASS
        for spelling in (declared.name, *declared.spellings):
            found[spelling] = declared
    return found


def parse_chain(spec: str, aliases: dict[str, str] | None = None,
                start: str = "pytorch") -> tuple[str, ...]:
    """`onnx > O2 > int8` (or a name of today's, like `onnx-opt-int8`) as its pass names,
    checked: each pass takes the kind the one before it makes, starting from a `start` folder
    (a PyTorch model), and at most one of them quantizes."""
    from slimformer.compression.args import ALIASES

    aliases = ALIASES if aliases is None else aliases
    text = aliases.get(spec.strip(), spec)
    parts = tuple(p.strip() for p in text.split(">"))
    known = registry()
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        fail(f"unknown variant {spec!r} (no pass {', '.join(map(repr, unknown))}): choose "
             f"from {', '.join(aliases)}, or chain passes ({', '.join(sorted(known))}) like "
             "'onnx > O2 > int8'")
    kind = start
    for i, part in enumerate(parts):
        if known[part].takes != kind:
            fail(f"variant {spec!r}: {part} takes a {known[part].takes} folder, but it gets "
                 f"a {kind} one")
        kind = known[part].makes
        early = [p for p in parts[:i] if known[p].name in known[part].not_after]
        if early:
            fail(f"variant {spec!r}: {part} must come before {', '.join(early)}")
        # a spelling named in not_after (a setting of that pass) rules out the pair
        clash = [p for p in parts[:i] if p in known[part].not_after]
        if clash:
            fail(f"variant {spec!r}: {part} cannot follow {', '.join(clash)}")
    if sum(known[p].quantizes for p in parts) > 1:
        fail(f"variant {spec!r} quantizes twice")
    return parts
