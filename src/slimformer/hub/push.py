"""Pushing staged repositories to the Hub: token and access checked first, one commit per
repository."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.hub.push_plan import RepoPlan, is_main_process
from slimformer.hub.staging import stage_repositories

logger = logging.getLogger(__name__)

CREDENTIALS_HELP = ("set HF_TOKEN or run `huggingface-cli login` (a token with write access: "
                    "https://huggingface.co/settings/tokens)")


def resolve_token(token: str | None = None) -> str:
    """The token to push with: given, else HF_TOKEN, else the stored `huggingface-cli login`."""
    from huggingface_hub import get_token

    token = token or get_token()
    if not token:
        fail(f"no Hugging Face token found: {CREDENTIALS_HELP}; nothing was pushed "
             "(--dry_run writes the repositories locally instead)")
    return token


def check_online() -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        fail("HF_HUB_OFFLINE is set, so the Hub cannot be reached: unset it to push, or pass "
             "--dry_run to write the repositories locally; nothing was pushed")


def one_line(err: BaseException, token: str) -> str:
    """An error as one line that never shows the token."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text.replace(token, "***")[:300]


def check_access(api: Any, namespace: str, token: str) -> str:
    """Who the token belongs to, after checking it may write to `namespace` (no writes)."""
    import requests

    try:
        who = api.whoami(token=token)
    except requests.HTTPError as err:  # HfHubHTTPError, or whoami's own for a 401
        status = getattr(err.response, "status_code", None)
        if status == 401:
            fail(f"the Hub rejected the token (401 Unauthorized): {CREDENTIALS_HELP}; "
                 "nothing was pushed")
        fail(f"the Hub refused the token check: {one_line(err, token)}; nothing was pushed")
    except (requests.RequestException, OSError) as err:
        fail(f"cannot reach the Hugging Face Hub ({one_line(err, token)}); nothing was pushed")
    user = who.get("name", "?")
    orgs = [org.get("name") for org in who.get("orgs", [])]
    if namespace != user and namespace not in orgs:
        fail(f"the token belongs to {user!r}, who cannot write to namespace {namespace!r} "
             f"(your organizations: {', '.join(orgs) or 'none'}); nothing was pushed")
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        fail(f"the token of {user!r} is read-only: {CREDENTIALS_HELP}; nothing was pushed")
    return user


def publish(api: Any, repo_id: str, folder: Path, token: str, private: bool,
            commit_message: str) -> str:
    """Create the repository if needed and upload the folder as one commit; returns its URL.

    A repository this call created is deleted again when its upload fails, so the Hub never
    keeps an empty or half-described model.
    """
    from huggingface_hub.utils import HfHubHTTPError

    created = False
    try:
        try:
            api.create_repo(repo_id, token=token, private=private, repo_type="model")
            created = True
        except HfHubHTTPError as err:
            if getattr(err.response, "status_code", None) != 409:  # 409: it exists already
                raise
        # One commit holds every file (and removes stale ones), so the repository changes
        # all at once or not at all.
        api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model", token=token,
                          commit_message=commit_message, delete_patterns="*")
    except Exception:
        if created:
            try:
                api.delete_repo(repo_id, token=token, missing_ok=True)
            except Exception:  # the original error matters more than a failed clean-up
                pass
        raise
    return f"{api.endpoint}/{repo_id}"


def push(plans: list[RepoPlan], report: BenchmarkReport, *, plot: Path | None,
         token: str | None = None, private: bool = False,
         commit_message: str = "Publish with slimformer", **card_options: Any) -> dict[str, str]:
    """Publish every planned repository; returns repo id -> URL (empty on non-main ranks)."""
    if not is_main_process():
        return {}
    import requests
    from huggingface_hub import HfApi

    token = resolve_token(token)
    check_online()
    api = HfApi()
    namespaces = sorted({p.repo_id.split("/")[0] for p in plans})
    for namespace in namespaces:
        check_access(api, namespace, token)
    stage = Path(tempfile.mkdtemp(prefix="slimformer-push-"))
    published: dict[str, str] = {}
    try:
        staged = stage_repositories(plans, report, stage, plot=plot, secrets=(token,),
                                    **card_options)
        for plan in tqdm(plans, desc="push", leave=False):
            try:
                url = publish(api, plan.repo_id, staged[plan.repo_id], token, private,
                              f"{commit_message}: {plan.variant}")
            except (requests.RequestException, OSError, ValueError) as err:
                done = ", ".join(published) or "none"
                fail(f"pushing {plan.repo_id} failed ({one_line(err, token)}); it is unchanged. "
                     f"Published completely before it: {done}; run again to push the rest")
            published[plan.repo_id] = url
            logger.info("published %s", url)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return published
