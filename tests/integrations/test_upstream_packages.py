"""The packages each upstream code base needs, one list per target (VideoMAE v1, VideoMAEv2, mae_st): the
same in README.md and in the target's own README, and, against the real checkout (skipped without it),
exactly what its pretraining script imports beyond adamask's own dependencies, every package importable."""

from __future__ import annotations

import json
import re
from importlib import metadata
from importlib.util import find_spec
from typing import Dict, Set

import _upstream_helpers as H
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TARGETS = {  # README.md's row, the checkout, its script, and where the target's README lists its packages
    "v1": ("VideoMAE v1", "ADAMASK_VIDEOMAE_ROOT", "modeling_pretrain.py", "videomae", "# VideoMAE v1"),
    "v2": ("VideoMAEv2", "ADAMASK_VIDEOMAEV2_ROOT", "models/modeling_pretrain.py", "videomae", "# VideoMAEv2"),
    "mae_st": ("mae_st", "ADAMASK_MAE_ST_ROOT", "models_mae.py", "mae_st", "pip install adamask"),
}
SCRIPTS = {"v1": "run_mae_pretraining.py", "v2": "run_mae_pretraining.py", "mae_st": "run_pretrain.py"}
# needed while training, not when their script is imported
AT_RUN_TIME = {"mae_st": {"av": "decodes the clips: adamask's stand-in for torchvision's removed video reader"}}

PROBE = """
import json, os, runpy, sys
from importlib import metadata
target, repo, script = sys.argv[1:4]
from adamask.integrations.compat import install_compat_shims
import adamask.integrations.mae_st, adamask.integrations.videomae, einops, numpy, timm, torch
install_compat_shims()
before = {m.split(".")[0] for m in sys.modules}
sys.path[:0] = [os.path.dirname(repo), repo] if target == "mae_st" else [repo]
runpy.run_path(os.path.join(repo, script), run_name="adamask_probe")  # their imports, not their main
dists = metadata.packages_distributions()
new = {m.split(".")[0] for m in sys.modules} - before
print("DISTS " + json.dumps(sorted({d for m in new for d in dists.get(m, [])})))
"""


def readme_lists() -> Dict[str, Set[str]]:
    """README.md's package list of each target."""
    text = (H.REPO_ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([^|]+?) \| `([^`]+)` \|$", text, flags=re.M))
    return {t: set(rows[row].split()) for t, (row, *_) in TARGETS.items()}


def target_readme_list(target: str) -> Set[str]:
    """The packages the target's own README installs (its ``pip install adamask ...`` line)."""
    _, _, _, folder, mark = TARGETS[target]
    text = (H.REPO_ROOT / "integrations" / folder / "README.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("pip install adamask ") and mark in x)
    return set(line.split("#")[0].split()[3:])


def requirement_closure(names: Set[str]) -> Set[str]:
    """``names`` and every distribution they require, transitively (installed ones; no extras)."""
    seen: Set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in map(Requirement, requires):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(r.name))
    return seen


def top_level_modules(dist: str) -> Set[str]:
    """The modules the installed distribution ``dist`` provides."""
    name = canonicalize_name(dist)
    return {m for m, ds in metadata.packages_distributions().items() if name in map(canonicalize_name, ds)}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_one_list_per_target_the_same_in_both_readmes(target):
    assert target_readme_list(target) == readme_lists()[target]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_list_is_what_their_code_imports(target, tmp_path):
    _, env, marker, _, _ = TARGETS[target]
    root = H.checkout(env, marker, target)
    if target == "v1" and (root / "models" / "modeling_pretrain.py").is_file():
        pytest.skip(f"{env} points at a VideoMAEv2 checkout")
    listed = {canonicalize_name(n) for n in readme_lists()[target]}
    for name in listed:
        modules = top_level_modules(name)
        assert modules and all(find_spec(m) is not None for m in modules), f"{name} is not importable"
    r = H.run_python(["-c", PROBE], [target, str(root), SCRIPTS[target]], cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    imported = {canonicalize_name(d) for d in json.loads(r.stdout.split("DISTS ", 1)[1])}
    ours = requirement_closure({Requirement(r).name for r in metadata.requires("adamask") or [] if ";" not in r})
    assert imported - ours - requirement_closure(listed) == set(), "imported by their code but not listed"
    at_run_time = {canonicalize_name(n) for n in AT_RUN_TIME.get(target, {})}
    assert listed - imported - at_run_time == set(), "listed but not imported by their code"
