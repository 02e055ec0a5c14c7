"""docs/migration.md: every TF2 / tfgames snippet runs, in order; TF1 snippets are marked."""

import ast
import linecache
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "migration.md"
TF1_MARK = "# tf1"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def split_blocks():
    blocks = python_blocks()
    tf1 = [b for b in blocks if b.startswith(TF1_MARK + "\n")]
    runnable = [b for b in blocks if not b.startswith(TF1_MARK + "\n")]
    return tf1, runnable


def test_guide_has_both_kinds_of_blocks_and_no_other_fences():
    tf1, runnable = split_blocks()
    assert len(tf1) >= 8 and len(runnable) >= 15
    fences = re.findall(r"^```(\S*)$", GUIDE.read_text(), flags=re.M)
    assert set(fences) == {"python", ""}, "use ```python (with '# tf1' for TF1 code)"
    for block in tf1:  # the TF1 illustrations are real code, even if they do not run here
        ast.parse(block)


@pytest.mark.parametrize("pattern", [
    "tf.Session", "sess.run(train_op)", "tf.gradients", "apply_gradients",
    "tf.control_dependencies", "tf.variable_scope", "get_collection", "snt.AbstractModule",
    "tf.layers", "slim", "tf.contrib.distributions", "tf.distributions", "graph_replace",
    "stateless_call", "tf.assign", "make_one_shot_iterator", "tf.placeholder", "feed_dict",
    "exponential_decay", "kfac.utils.fwd_gradients", "trainable = False",
    "minimize(-loss", "tf.random_normal", "RMSPropOptimizer", "AdamOptimizer",
    "AdagradOptimizer", "MomentumOptimizer", "SymplecticOptimizer", "AdamirrorOptimizer",
    "epsilon 1e-10", "epsilon 1e-8 vs 1e-7", "starts at **ones**",
])
def test_guide_covers_every_tf1_pattern_of_the_seeds(pattern):
    assert pattern in GUIDE.read_text()


def test_guide_snippets_run_in_order():
    _, runnable = split_blocks()
    namespace = {"__name__": "migration_guide"}
    for index, block in enumerate(runnable):
        filename = f"docs/migration.md[python block {index}]"
        # Let AutoGraph and tracebacks find the source of functions defined in the block.
        linecache.cache[filename] = (len(block), None, block.splitlines(True), filename)
        try:
            exec(compile(block, filename, "exec"), namespace)
        except Exception as error:  # name the failing block, keep the traceback
            raise AssertionError(
                f"python block {index} of docs/migration.md failed; it starts with:\n"
                + "\n".join(block.splitlines()[:3])) from error
    # A few results the text states.
    assert namespace["history"].history.keys() >= {"discriminator_loss", "generator_loss"}
    assert namespace["constrained"].optimizer.schedule == "alternating"
    assert "lagrangian_loss" in [m.name for m in namespace["constrained"].metrics]
