"""Caching of the deterministic stages (proposal, training) by input fingerprint + config.

A deterministic stage's output depends only on the input files (their SHA-256 fingerprints),
the config, the run date and the code, and, where a stage reads something else, on that too
(:func:`stage_dependencies`: the champion model behind ``train.sampling: loss``).
:func:`stage_fingerprint` hashes exactly these; the
stage writes its files into a content-addressed folder
``<output_root>/.cache/<stage>/<fingerprint>/`` (assembled in a temporary sibling and renamed
into place, so it appears complete or not at all) and returns a small summary of paths and
numbers. Prefect caches that *summary* (JSON, never a frame) under a key from
:class:`StageOutputs`; on a cache hit the task is skipped and the summary's paths point at the
folder, which still holds the files.

The key carries a *generation* stored beside the folder: if the folder is deleted while Prefect
still remembers the key, the next run sees the folder missing, draws a new generation and so a
new key, and recomputes instead of returning paths to files that no longer exist.

Set ``PREFECT_TASKS_REFRESH_CACHE=true`` (or ``refresh_cache=True`` on the task) to recompute.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext

import is_core
from is_core import __version__
from is_core.config import IsbenchConfig
from is_core.ctr.model import library_versions
from is_core.data.atomic import publish_directory, write_json_atomic, write_text_atomic
from is_core.data.stage import Inputs
from is_core.errors import RegistryError
from is_core.release.stage import registry_for

CACHE_DIR = ".cache"
SUMMARY_FILE = "summary.json"

#: A stage's summary (a ``TypedDict`` such as ``ProposalResult``): JSON-friendly, paths as text.
Summary = TypeVar("Summary", bound=Mapping[str, Any])


def source_fingerprint(root: Path) -> str:
    """SHA-256 of every ``*.py`` file under ``root``, subpackages included, each by its path
    relative to ``root`` and its bytes (a moved or renamed module changes it too)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def code_fingerprint() -> str:
    """:func:`source_fingerprint` of the ``is_core`` package: any change to the library
    invalidates the cached stages (computed once per process)."""
    return source_fingerprint(Path(is_core.__file__).parent)


def stage_dependencies(stage: str, config: IsbenchConfig) -> dict[str, str] | None:
    """What ``stage`` reads beyond its config and inputs: for ``train`` with
    ``train.sampling: loss``, the champion model (path and registry digest), whose scores set
    the keep probabilities, so a new champion means a new sample and a new cache key; None
    otherwise, and when there is no champion or its registry cannot be read (the stage then
    samples with ``negative``)."""
    if stage != "train" or config.train.sampling != "loss":
        return None
    try:
        champion = registry_for(config.promotion, config.output_root).champion()
    except (RegistryError, OSError, ValueError):
        return None
    if champion is None:
        return None
    return {"champion_path": str(champion.model_path), "champion_digest": champion.digest}


def stage_fingerprint(stage: str, config: IsbenchConfig, inputs: Inputs) -> str:
    """SHA-256 of everything a deterministic stage's output depends on."""
    payload: dict[str, Any] = {
        "stage": stage,
        # where a run reports (events, MLflow) changes no stage's output
        "config": config.model_dump(mode="json", exclude={"tracking"}),
        "run_date": inputs["run_date"],
        "days": inputs["days"],
        "inputs": {role: info["fingerprint"] for role, info in sorted(inputs["roles"].items())},
        "isbench": __version__,
        "code": code_fingerprint(),
        "libraries": library_versions(),
    }
    dependencies = stage_dependencies(stage, config)
    if dependencies is not None:  # absent otherwise, so no other stage's key changes
        payload["depends_on"] = dependencies
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def stage_cache_dir(config: IsbenchConfig, stage: str, inputs: Inputs) -> Path:
    """The content-addressed folder of ``stage``'s outputs for these inputs and config."""
    digest = stage_fingerprint(stage, config, inputs)
    return Path(config.output_root) / CACHE_DIR / stage / digest[:32]


def _generation(folder: Path) -> str:
    """The folder's cache generation; a new one whenever the folder is not complete."""
    marker = folder.with_name(folder.name + ".generation")
    if (folder / SUMMARY_FILE).is_file() and marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    generation = uuid.uuid4().hex[:12]
    write_text_atomic(generation, marker)
    return generation


@dataclass
class StageOutputs(CachePolicy):
    """Cache key of a deterministic stage: stage + config + input fingerprints + code.

    The task must take ``config`` (an :class:`IsbenchConfig`) and ``inputs`` (the summary of the
    load stage) as parameters; its other parameters (upstream summaries, folders) are
    deterministic functions of these and are not hashed.
    """

    stage: str = ""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        folder = stage_cache_dir(inputs["config"], self.stage, inputs["inputs"])
        return f"isbench-{self.stage}-{folder.name}-{_generation(folder)}"


def _relocate(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old):]
    if isinstance(value, dict):
        return {k: _relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, old, new) for v in value]
    return value


def run_in_cache_dir(stage: str, config: IsbenchConfig, inputs: Inputs,
                     compute: Callable[[Path], Summary]) -> Summary:
    """Run ``compute(out_dir)`` into a fresh temporary folder and publish it as the stage's
    content-addressed folder; return its summary with paths pointing into that folder."""
    folder = stage_cache_dir(config, stage, inputs).resolve()
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        summary: Summary = _relocate(compute(tmp), str(tmp), str(folder))
        write_json_atomic(summary, tmp / SUMMARY_FILE)
        publish_directory(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def copy_outputs(summary: Summary, destination: Path) -> Summary:
    """Link (or copy) every file of the folders ``summary``'s paths point into to
    ``destination``; return the summary with its paths moved there."""
    destination = Path(destination).resolve()
    folders = {Path(v["path"]).parent.resolve() for v in summary.values()
               if isinstance(v, dict) and "path" in v}
    out = summary
    for folder in folders:
        for file in folder.iterdir():
            if file.is_file() and file.name != SUMMARY_FILE:
                target = destination / file.name
                target.unlink(missing_ok=True)
                try:
                    target.hardlink_to(file)  # outputs are never modified in place
                except OSError:
                    shutil.copy2(file, target)
        out = _relocate(out, str(folder), str(destination))
    return out
