"""The teaching notebooks in nbs/ run top to bottom, and are what nbs/make_notebooks.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

NBS = Path(__file__).resolve().parent.parent / "nbs"
spec = importlib.util.spec_from_file_location("make_notebooks", NBS / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_notebooks)
NAMES = sorted(make_notebooks.NOTEBOOKS)


def sources(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def test_all_three_notebooks_exist():
    assert NAMES == ["01_quickstart.ipynb", "02_intuition.ipynb", "03_cyclical.ipynb"]
    assert {p.name for p in NBS.glob("*.ipynb")} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_matches_its_generator(name):
    committed = nbformat.read(NBS / name, as_version=4)
    assert sources(committed) == sources(make_notebooks.build(name)), (
        f"{name} differs from nbs/make_notebooks.py: rerun `python nbs/make_notebooks.py --execute`"
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name):
    nb = nbformat.read(NBS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    make_notebooks.execute(nb, timeout=300)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert not any(o.get("output_type") == "error" for cell in code for o in cell.outputs)
    images = sum("image/png" in o.get("data", {}) for cell in code for o in cell.outputs)
    assert images >= 2, "every notebook draws its claims"
    assert "notebook ran in" in "".join(o.get("text", "") for o in code[-1].outputs)
