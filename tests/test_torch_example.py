"""examples/imdb_torch.py, the tutorial's model in plain PyTorch, runs on both LSTM classes."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_imdb import SEPARABLE_REVIEWS, write_tarball

pytest.importorskip("torch")
EXAMPLE = Path(__file__).parent.parent / "examples" / "imdb_torch.py"


@pytest.mark.parametrize("packed", [False, True])
def test_the_pytorch_example_trains_the_same_model_on_rnnkit_and_torch_nn(tmp_path, packed):
    env = dict(os.environ, RNNKIT_DATA=str(write_tarball(tmp_path, SEPARABLE_REVIEWS)),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    args = [sys.executable, str(EXAMPLE), "--compare", "--epochs", "2"] + (["--packed"] if packed else [])
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    accuracy = {name: [float(a) for a in re.findall(rf"{re.escape(name)} .*val_acc (\S+)", run.stdout)]
                for name in ("rnnkit", "torch.nn")}
    assert len(accuracy["rnnkit"]) == 2 and accuracy["rnnkit"] == accuracy["torch.nn"], run.stdout
    assert re.search(r"trains \d+\.\d+x as fast as torch.nn.LSTM", run.stdout), run.stdout
