"""The CLI under faults: unusable folders, a folder in use, damaged files, other settings on
--resume, a user's own game over several seeds. Every error is one line with exit 2."""

import json
import os
import subprocess
import sys

import pytest

from tfgames.lab.cli import main


def _exit_code_and_error(capsys, argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("kind", ["file", "below_file"])
def test_unusable_out_is_one_line_exit_2(tmp_path, capsys, kind):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    out = target if kind == "file" else target / "sub" / "dir"
    code, err = _exit_code_and_error(
        capsys, ["run", "mog", "--preset", "smoke", "--steps", "1", "--out", str(out)])
    assert code == 2 and len(err.splitlines()) == 1
    assert ("it is a file" if kind == "file" else "is below the file") in err
    assert target.read_text() == "not a folder"


def test_summarize_damaged_metrics_is_one_line(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text('{"experiment": "mog", "runs": {')
    code, err = _exit_code_and_error(capsys, ["summarize", str(tmp_path)])
    assert code == 2 and len(err.splitlines()) == 1
    assert str(tmp_path / "metrics.json") in err and "not valid JSON" in err


def test_second_run_into_a_held_folder_is_refused_and_a_dead_holders_lock_is_free(
        tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, json, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.write(fd, json.dumps({'pid': os.getpid(), 'host': 'h', 'started': 't'}).encode())\n"
         "print('locked', flush=True); time.sleep(120)\n", str(out / ".lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = _exit_code_and_error(
            capsys, ["run", "mog", "--preset", "smoke", "--optimizers", "sgd", "--steps", "1",
                     "--out", str(out), "--quiet"])
        assert code == 2 and len(err.splitlines()) == 1
        assert f"in use by another run (pid {holder.pid} on host h" in err
        assert not (out / "metrics.json").exists()
    finally:
        holder.kill()  # like a crash: the kernel releases the flock
        holder.wait()
    from tfgames.atomic import FolderLock

    with FolderLock(out) as lock:  # the dead holder's lock is taken over
        assert lock.holder()["pid"] == os.getpid()


def test_resume_with_other_settings_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "mog", "--preset", "smoke", "--optimizers", "sgd", "--steps", "2",
            "--seed", "5", "--out", str(out), "--quiet", "--resume"]
    assert main(argv) == 0
    before = (out / "metrics.json").read_bytes()
    code, err = _exit_code_and_error(capsys, [a if a != "5" else "6" for a in argv])
    assert code == 2 and len(err.splitlines()) == 1
    assert "different run" in err and "'seed'" in err and "Nothing was written" in err
    assert (out / "metrics.json").read_bytes() == before

    # The newest checkpoint damaged: the same command falls back to the previous good one,
    # names the damaged file, and ends where the first run ended.
    final = json.loads(before)["runs"]["sgd"]["final"]
    newest = sorted((out / "checkpoints").rglob("step_2.keras"))[0]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(RuntimeWarning, match="step_2.keras is damaged or missing"):
        assert main(argv) == 0
    again = json.loads((out / "metrics.json").read_text())["runs"]["sgd"]["final"]
    assert {k: v for k, v in again.items() if k != "wall_time_s"} == {
        k: v for k, v in final.items() if k != "wall_time_s"}


USER_GAME = '''
import keras, tensorflow as tf, tfgames

class Quadratic(tfgames.GameModel):
    """min_x max_y  a/2 x^2 + x y - a/2 y^2 + noise drawn in the step."""
    def __init__(self, a=1.0, **kwargs):
        super().__init__(**kwargs)
        self.a = a
        self.x = self.add_weight(shape=(), initializer="ones", name="x")
        self.y = self.add_weight(shape=(), initializer="ones", name="y")
    def players(self):
        return {"x": self.x, "y": self.y}
    def compute_losses(self, data, training=False):
        e = 0.01 * keras.random.normal((), seed=self.seed_generator)
        f = 0.5 * self.a * self.x ** 2 + self.x * self.y - 0.5 * self.a * self.y ** 2 + e
        return tfgames.zero_sum(f, min_player="x", max_player="y")
'''


def test_run_a_users_game_over_seeds_and_summarize(tmp_path, capsys, monkeypatch):
    from tfgames import repeatability

    (tmp_path / "my_quadratic_game.py").write_text(USER_GAME)
    monkeypatch.chdir(tmp_path)
    entered = []  # each run trains under fixed_sum_order, as the lab's experiments do
    original = repeatability.fixed_sum_order
    monkeypatch.setattr(repeatability, "fixed_sum_order",
                        lambda: entered.append(1) or original())
    out = tmp_path / "user"
    assert main(["run", "my_quadratic_game:Quadratic", "--config", '{"a": 0.5}',
                 "--optimizers", "sgd,sga", "--steps", "3", "--seeds", "0", "1",
                 "--learning-rate", "0.1", "--out", str(out), "--quiet"]) == 0
    assert len(entered) == 4  # 2 optimizers x 2 seeds
    finals = []
    for seed in (0, 1):
        saved = json.loads((out / f"seed-{seed}" / "metrics.json").read_text())
        assert saved["game"] == "my_quadratic_game:Quadratic"
        assert saved["game_config"] == {"a": 0.5}
        assert saved["runs"]["sga"]["status"] == "done"
        assert set(saved["runs"]["sga"]["final"]) >= {"x_loss", "y_loss", "sga_lambda"}
        finals.append(saved["runs"]["sga"]["final"]["x_loss"])
    assert finals[0] != finals[1]  # the seeds' noise differs
    capsys.readouterr()
    assert main(["summarize", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Mean +- standard deviation over seeds" in text and "| sga | 2 |" in text
