"""The wheel carries everything the service needs: installed outside the checkout, the demo runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _clean_tree(into: Path) -> Path:
    """The checkout's tracked files alone, as a clean clone has them (no fetched ECharts, no venv)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def test_wheel_built_from_a_clean_tree_runs_the_demo_in_a_fresh_venv_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    source = _clean_tree(tmp_path / "clean")
    assert not (source / "api" / "static" / "vendor").exists()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                            str(source)], capture_output=True, text=True)
    if built.returncode != 0 and ("Could not find a version" in built.stderr or "urlopen error" in built.stderr):
        pytest.skip("no package index or npm registry to build the wheel from")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("duijie-*.whl")
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    # The dependencies come from this environment (appended after the fresh site-packages, so the
    # installed wheel, not the checkout, provides duijie's own packages).
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import api, matcher, duijie_data, duijie_models; "
                            "print(api.__file__, matcher.__file__, duijie_data.__file__, duijie_models.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where
    demo = subprocess.run([str(fresh / "bin" / "duijie"), "demo"], cwd=work, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "written: out/demo_pairs.csv" in demo.stdout and (work / "out" / "demo_pairs.csv").exists()
    # The service's schema migrations, templates and static files came with it: keys migrate a database.
    url = f"sqlite:///{work / 'x.db'}"
    subprocess.run([str(python), "-c", f"from api.db import make_engine, migrate; migrate(make_engine({url!r}))"],
                   cwd=work, env=env, check=True)
    keys = subprocess.run([str(fresh / "bin" / "duijie"), "keys", "--database-url", url, "list"], cwd=work, env=env,
                          capture_output=True, text=True)
    assert keys.returncode == 0, keys.stderr[-2000:]
    files = subprocess.run([str(python), "-c", "from api.main import STATIC_DIR; from api.web import templates; "
                            "from matcher.scoring import DEFAULT_MODEL_DIR; "
                            "print((STATIC_DIR / 'review.js').exists(), (DEFAULT_MODEL_DIR / 'model.json').exists(), "
                            "templates.get_template('queue.html') is not None, STATIC_DIR)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert files[:3] == ["True", "True", "True"]
    # The charts came in the wheel, the file the pinned SHA-512 checked (the browser test draws with it).
    charts = Path(files[3]) / "vendor" / "echarts"
    assert (charts / "echarts.min.js").stat().st_size > 500_000 and (charts / "LICENSE").exists()
    assert (charts / "echarts.min.js").read_bytes() == (source / "api" / "static" / "vendor" / "echarts" /
                                                        "echarts.min.js").read_bytes()


def _module_imports(path: Path) -> set[str]:
    """The matcher modules a module names at its top, type-checking imports included (a circle there is
    still two modules that each need the other); imports inside functions are not counted."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    nodes = [n for top in tree.body for n in (top.body if isinstance(top, ast.If) else [top])]
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "matcher":
            found.add(node.module)
            # `from matcher import shards` names a module too
            found.update(f"matcher.{a.name}" for a in node.names if (ROOT / "matcher" / f"{a.name}.py").exists())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("matcher."))
    return found - {"matcher"}


def test_the_engine_has_no_import_circle():
    graph = {f"matcher.{p.stem}": _module_imports(p) for p in (ROOT / "matcher").glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import circle: " + " → ".join([*path[path.index(module):], module])
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert "matcher.pipeline" not in graph["matcher.storage"] | graph["matcher.index"] | graph["matcher.batch"]


def test_saving_and_loading_do_not_need_the_matcher():
    # Alone in a fresh interpreter: importing the storage module must not pull the pipeline in behind it.
    code = ("import sys, matcher.storage, matcher.index, matcher.distributed; "
            "assert 'matcher.pipeline' not in sys.modules, sorted(m for m in sys.modules if m.startswith('matcher'))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
