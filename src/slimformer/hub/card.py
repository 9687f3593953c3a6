"""Model cards for slimformer variants: Hub metadata with a model-index, and a benchmark body.

A card is rendered from what slimformer already wrote: the benchmark report (report.json, every
variant measured side by side on one machine), the variant folder's provenance record
(slimformer.json) and the repository ids the variants are published under. The Jinja template
is `hub_cards/variant.md` in the repository, shipped inside the package as
`slimformer/hub_cards/`. A card never names a local path or a token: local paths in the
provenance become repository ids or bare folder names, and `check_public` refuses any card
that still holds one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import ModelCard

from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.hub.args import DEFAULT_LICENSE
from slimformer.hub.card_body import EXAMPLE_INTENT, EXAMPLE_QUERY, card_body, template_text
from slimformer.hub.card_data import card_data
from slimformer.hub.report_rows import dataset_config_of
from slimformer.hub.sanitize import check_public, public_model_id
from slimformer.provenance import read_provenance

__all__ = ["EXAMPLE_INTENT", "EXAMPLE_QUERY", "PLOT_FILE", "render_card", "template_text"]


PLOT_FILE = "benchmark.png"


def render_card(report: BenchmarkReport, variant: str, repo_id: str, *,
                folder: str | Path | None = None, repo_ids: dict[str, str] | None = None,
                folders: dict[str, str] | None = None, base_model: str | None = None,
                license: str = DEFAULT_LICENSE, dataset_config: str | None = None,
                plot_file: str | None = PLOT_FILE, secrets: Iterable[str] = ()) -> ModelCard:
    """The model card of one benchmarked variant, published as `repo_id`.

    `repo_ids` maps the other variants' names to their repositories (linked in the table);
    `folders` maps local folders to repository ids (so provenance paths become ids);
    `base_model` (a Hub id) stands in where the provenance names no base model with a Hub id.
    """
    row = report.row(variant)
    repo_ids = {**(repo_ids or {}), variant: repo_id}
    folders = folders or {}
    folder = Path(folder) if folder is not None else None
    provenance = read_provenance(folder) if folder is not None else {"steps": []}
    if base_model and not public_model_id(base_model, folders):
        fail(f"--base_model must be a Hub model id like owner/name, got {base_model!r}")
    base = (public_model_id(provenance.get("base_model"), folders)
            or public_model_id(base_model, folders))
    if base == repo_id:
        base = None
    config = dataset_config_of(report, dataset_config)
    body = card_body(report, variant, repo_id, row, folder, provenance, base, repo_ids, folders,
                     license, config, plot_file)
    data = card_data(row, report, repo_id, provenance, base, license, config, body)
    card = ModelCard.from_template(data, template_str=template_text())
    check_public(str(card), f"the model card of {variant!r}", secrets)
    return card
