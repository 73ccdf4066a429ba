"""`pip install .` must ship the catalogs inside the wheel, so `planner` works from any directory."""

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed: {proc.stderr[-2000:]}")
    return next(out.glob("planner-*.whl"))


def test_wheel_contains_every_catalog_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (ROOT / "catalogs").rglob("*.yaml"):
        assert f"planner/catalogs/{f.relative_to(ROOT / 'catalogs').as_posix()}" in names, f


def test_installed_wheel_plans_from_another_directory(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # system site-packages provide the dependencies; the wheel itself is installed fresh.
    # --ignore-installed: CI has already run `pip install .` into those system site-packages,
    # and without it pip would call the wheel "already satisfied" and install no `planner` here.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--ignore-installed", str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLANNER_CATALOG_PATH")}
    proc = subprocess.run([str(env_dir / "bin" / "planner"), "plan", "--gpu-hours", "4e6", "--cluster", "jupiter-booster",
                           "--nodes", "all", "--format", "json"], cwd=elsewhere, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["gpus"] == 23752
    # the wheel's catalogs are the source tree's, byte for byte: the same provenance fingerprint
    from planner.catalog import Catalog, builtin_dir

    assert data["provenance"]["catalog_sha256"] == Catalog((builtin_dir(),)).provenance()["catalog_sha256"]
    locate = subprocess.run([str(python), "-c", "import planner.catalog as c; print(c.builtin_dir())"],
                            cwd=elsewhere, capture_output=True, text=True, env=env)
    assert str(env_dir) in locate.stdout  # the wheel's own copy, not the source tree
