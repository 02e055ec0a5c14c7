"""The getting-started tutorial and the how-to pages run, block by block, as written."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), flags=re.S)


def run_page(page: str) -> dict:
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python code blocks"
    namespace: dict = {"__name__": "docs_page"}
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
    return namespace


def test_tutorial_runs_and_shows_what_it_says():
    ns = run_page("docs/tutorial.md")
    assert sorted(ns["history"].history) == [
        "at_xi_norm", "discriminator_loss", "generator_loss", "sga_lambda",
        "val_discriminator_loss", "val_generator_loss", "xi_norm"]
    assert ns["samples"].shape == (1000, 2)
    assert type(ns["best"]).__name__ == "GAN"
    assert np.isfinite(ns["weighted"].get_weights()[0]).all()
    assert ns["logs"]["val_d_accuracy"][0] >= 0.0


@pytest.mark.parametrize("page", ["docs/howto/saving.md", "docs/howto/constrained.md",
                                  "docs/howto/n-player.md"])
def test_page_runs(page):
    run_page(page)


def test_install_instructions_name_the_lab_extra():
    text = (ROOT / "docs/tutorial.md").read_text()
    assert 'pip install "tfgames[lab]"' in text and 'pip install ".[lab]"' in text
    extras = (ROOT / "setup.cfg").read_text()
    assert re.search(r"^lab =", extras, flags=re.M), "setup.cfg must declare the lab extra"
