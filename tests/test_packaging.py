"""The distribution: ``python -m build`` gives an sdist and a wheel whose metadata passes ``twine check``, and the
wheel, installed into a fresh virtual environment (not the source tree), imports every module and runs the
``adamask`` command. Catches a module or package-data file missing from the wheel."""

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    # a copy of the tracked tree, so that building leaves no egg-info or build folder in the checkout
    src = tmp_path_factory.mktemp("src")
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT).split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            (src / f).write_bytes((ROOT / f).read_bytes())
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)])
    return out


def test_sdist_and_wheel_pass_twine_check(dist):
    pytest.importorskip("twine")
    names = sorted(p.name for p in dist.iterdir())
    assert any(n.endswith(".tar.gz") for n in names) and any(n.endswith(".whl") for n in names), names
    assert "PASSED" in run([sys.executable, "-m", "twine", "check", *map(str, dist.iterdir())])


def test_installed_wheel_imports_every_module_and_runs_the_command(dist, tmp_path):
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "adamask/py.typed" in names
    modules = sorted(
        n[:-3].replace("/", ".").removesuffix(".__init__")
        for n in names
        if n.startswith("adamask/") and n.endswith(".py") and not n.endswith("__main__.py")
    )
    assert {"adamask.masking", "adamask.compare.run", "adamask.integrations.hf.model"} <= set(modules)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)])
    # the dependencies (torch, transformers, ...) come from the environment running the tests
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    cwd = tmp_path / "elsewhere"  # away from the source tree
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (
        "import importlib, json, sys; mods = json.loads(sys.argv[1]); "
        "[importlib.import_module(m) for m in mods]; import adamask; print(adamask.__file__, adamask.__version__)"
    )
    where, version = run([str(py), "-c", code, json.dumps(modules)], cwd=cwd, env=env).split()
    source_version = run([sys.executable, "-c", "import adamask; print(adamask.__version__)"], cwd=ROOT).strip()
    assert where.startswith(str(env_dir)) and version == source_version
    assert "compare" in run([str(env_dir / "bin" / "adamask"), "--help"], cwd=cwd, env=env)
    assert "adaptive" in run([str(env_dir / "bin" / "adamask"), "list"], cwd=cwd, env=env)
