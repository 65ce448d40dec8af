"""What a user who installs rnnkit from the package index relies on: the typed marker, type hints on
the public API, the version, the license."""

import inspect
import sys
import typing
from pathlib import Path

import pytest

import rnnkit
from rnnkit.models import Model, load_model

ROOT = Path(__file__).parent.parent


def test_the_package_is_marked_typed_and_its_main_api_has_type_hints():
    from rnnkit import kernels, layers
    from rnnkit.datasets import imdb
    from rnnkit.utils import pad_sequences, to_categorical

    assert (Path(rnnkit.__file__).parent / "py.typed").exists()
    for function in (Model.fit, Model.evaluate, Model.predict, Model.train_on_batch, Model.save, Model.export,
                     Model.load_weights, load_model, kernels.lstm_forward, kernels.lstm_backward, imdb.load_data,
                     imdb.encode, imdb.decode, pad_sequences, to_categorical, layers.LSTM.__init__,
                     layers.Embedding.__init__, layers.Dense.__init__):
        assert "return" in typing.get_type_hints(function), function.__qualname__


def public_classes(module):
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    return [getattr(module, n) for n in names if inspect.isclass(getattr(module, n))
            and getattr(module, n).__module__.startswith("rnnkit.")]


def test_every_public_constructor_and_keras_method_has_type_hints():
    from rnnkit import callbacks, initializers, layers, losses, metrics, optimizers

    unhinted = []
    for module in (layers, optimizers, losses, metrics, callbacks, initializers):
        for cls in public_classes(module):
            for name in ("__init__", "__call__", "build", "get_config", "update_state", "reset_state", "result"):
                method = vars(cls).get(name)
                if method is not None and "return" not in typing.get_type_hints(method):
                    unhinted.append(f"{module.__name__}.{cls.__name__}.{name}")
    for fn in (losses.binary_crossentropy, losses.mean_squared_error, metrics.binary_accuracy,
               metrics.mean_absolute_error, layers.Input, initializers.get):
        if "return" not in typing.get_type_hints(fn):
            unhinted.append(fn.__qualname__)
    assert not unhinted, unhinted


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11's")
def test_the_version_is_the_one_in_pyproject_and_the_license_is_there():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert rnnkit.__version__ == project["version"]
    assert project["license"] == {"text": "MIT"} and "MIT License" in (ROOT / "LICENSE").read_text()
    assert f"## {project['version']}" in (ROOT / "CHANGELOG.md").read_text()
