"""The by-hand path of integrations/videomae/README.md ("Or change these lines yourself"), as written: its
edits, read from the README, applied to a copy of the real checkout (ADAMASK_VIDEOMAE_ROOT,
ADAMASK_VIDEOMAEV2_ROOT; skipped without them), then their own script run on the CPU for one epoch of
two steps. Only the model is the tiny one of ``_tiny_videomae``, registered before their script runs."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import _upstream_helpers as H
import pytest
import torch

README = H.REPO_ROOT / "integrations" / "videomae" / "README.md"
SECTION = "## Or change these lines yourself"
SWAP, SAMPLER = "The one-line swap", "AdaMAE's sampler"
LABEL = re.compile(r"(v1 and v2|v1|v2), (at the very top of|in) `([^`]+)`")
RUN = "import runpy, sys, _tiny_videomae; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
CHECKOUTS = {
    "v1": ("ADAMASK_VIDEOMAE_ROOT", "modeling_pretrain.py", "MCG-NJU/VideoMAE"),
    "v2": ("ADAMASK_VIDEOMAEV2_ROOT", "models/modeling_pretrain.py", "OpenGVLab/VideoMAEv2"),
}


@dataclass(frozen=True)
class Edit:
    """One code block of the README: ``text`` put at the top of ``path`` (``before`` None), or ``before``
    replaced by ``text``, for the versions it names."""

    versions: frozenset
    path: str
    before: Optional[str]
    text: str


def readme_edits() -> Dict[str, List[Edit]]:
    """The edits of each by-hand path (the subsections of SECTION, by the start of their title), in the
    README's order; a path whose first step is "the shim call, as above" starts with the first path's."""
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    paths: Dict[str, List[Edit]] = {}
    for part in section.split("\n### ")[1:]:
        title, body = part.split("\n", 1)
        edits = paths.setdefault(title, [])
        for label, code in re.findall(r"([^\n]*):\n\n```python\n(.*?)```", body, flags=re.S):
            m = LABEL.search(label)
            assert m, f"README block without a 'v1/v2, in `file`' label: {label!r}"
            versions = frozenset(("v1", "v2") if m.group(1) == "v1 and v2" else (m.group(1),))
            before, sep, after = code.partition("# becomes\n")
            top = m.group(2) == "at the very top of"
            assert top != bool(sep), f"a block at the top adds lines, one in a file replaces some: {label!r}"
            before = before.rstrip("\n") + "\n"  # the blank line before "# becomes" is the formatter's
            edits.append(Edit(versions, m.group(3), None if top else before, after if sep else code))
        if "The shim call, as above" in body:
            edits[:0] = [e for e in next(iter(paths.values())) if e.before is None]
    return paths


def edited_copy(root: Path, dest: Path, edits: List[Edit], version: str) -> Path:
    """A copy of the checkout with ``version``'s edits applied as the README writes them."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    for e in (e for e in edits if version in e.versions):
        path = dest / e.path
        text = path.read_text()
        if e.before is None:
            path.write_text(e.text + "\n" + text)
        else:
            assert text.count(e.before) == 1, f"the README's lines are not (once) in their {e.path}: {e.before!r}"
            path.write_text(text.replace(e.before, e.text))
    return dest


def test_the_readme_states_the_shim_call_first_then_the_swap():
    paths = readme_edits()
    swap = next(v for k, v in paths.items() if k.startswith(SWAP))
    sampler = next(v for k, v in paths.items() if k.startswith(SAMPLER))
    assert [e.before is None for e in swap] == [True, False, False]
    assert "install_compat_shims()" in swap[0].text and swap[0].versions == {"v1", "v2"}
    assert [e.path for e in swap[1:]] == ["datasets.py", "dataset/pretrain_datasets.py"]
    assert sampler[0] == swap[0] and all("wrap" in e.text for e in sampler[1:])


@pytest.mark.parametrize("version,path", [("v1", SWAP), ("v2", SWAP), ("v1", SAMPLER), ("v2", SAMPLER)])
def test_their_script_runs_on_the_cpu_after_the_readmes_edits(version, path, tmp_path, monkeypatch):
    root = H.checkout(*CHECKOUTS[version])
    if version == "v1" and (root / "models" / "modeling_pretrain.py").is_file():
        pytest.skip("ADAMASK_VIDEOMAE_ROOT points at a VideoMAEv2 checkout")
    edits = next(v for k, v in readme_edits().items() if k.startswith(path))
    repo = edited_copy(root, tmp_path / "repo", edits, version)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the tiny model's registration
    monkeypatch.setenv("TORCHDYNAMO_DISABLE", "1")  # v2's get_model compiles: minutes of CPU, not under test
    clips = H.make_clips(tmp_path / "data")
    v2 = ["--data_root", str(tmp_path / "data"), "--num_frames", "4", "--sampling_rate", "2"]
    csv = tmp_path / "train.csv"
    csv.write_text("".join(f"{c.name} 0 -1\n" if version == "v2" else f"{c} 0\n" for c in clips))
    out = tmp_path / "out"
    their_args = [
        *(v2 if version == "v2" else []),
        *["--data_path", str(csv), "--mask_type", "tube", "--mask_ratio", "0.75"],
        *["--model", "pretrain_videomae_tiny_patch8_32", "--input_size", "32", "--batch_size", "2"],
        *["--num_workers", "1", "--epochs", "1", "--warmup_epochs", "0", "--device", "cpu"],
        *["--output_dir", str(out), "--no_auto_resume", "--save_ckpt_freq", "1"],
    ]
    r = H.run_python(["-c", RUN], [str(repo / "run_mae_pretraining.py"), *their_args], cwd=repo)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = json.loads((out / "log.txt").read_text().splitlines()[-1])
    assert math.isfinite(log["train_loss"]) and log["train_loss_scale"] == 1.0
    state = torch.load(out / "checkpoint-0.pth", map_location="cpu", weights_only=False)["model"]
    sampled = any(k.startswith("mask_sampler.") for k in state)
    if path == SWAP:
        assert "adamask tube masking generator" in r.stdout and not sampled
    else:
        assert math.isfinite(log["train_loss_sampling"]) and sampled
