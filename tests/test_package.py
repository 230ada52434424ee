"""Package-level promises: import without TensorFlow, public names documented, README snippets run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import keras_resnet

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, *args):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("TensorFlow is blocked in this test")
sys.meta_path.insert(0, Block())
"""


def _run(code, **env):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=environment)


def test_import_and_build_without_tensorflow():
    pytest.importorskip("jax", reason="needs a second Keras backend (jax) to run without TensorFlow")
    result = _run(
        BLOCK_TENSORFLOW + "import keras_resnet as kr\nprint(kr.ResNet20().output_shape)", KERAS_BACKEND="jax"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(None, 10)" in result.stdout


def test_every_public_name_has_a_docstring_with_an_example():
    missing = []
    for name in dir(keras_resnet):
        value = getattr(keras_resnet, name)
        if name.startswith("_") or not callable(value) or isinstance(value, type(keras_resnet)):
            continue
        doc = value.__doc__ or ""
        if "Example" not in doc and ">>>" not in doc:
            missing.append(name)
    assert not missing, f"public names without an example in their docstring: {missing}"


# builders: its 25 constructor examples are one template (test_builders builds every constructor the same way);
# features and preprocessing run theirs in their own test files.
_DOCTESTED_ELSEWHERE = {f"keras_resnet.models.{name}" for name in ("builders", "features", "preprocessing")}


def _modules_with_examples():
    import doctest
    import importlib
    import pkgutil

    names = [info.name for info in pkgutil.walk_packages(keras_resnet.__path__, "keras_resnet.")]
    return [
        name
        for name in names
        if name not in _DOCTESTED_ELSEWHERE
        and any(test.examples for test in doctest.DocTestFinder().find(importlib.import_module(name)))
    ]


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name):
    import doctest
    import importlib

    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(importlib.import_module(name), optionflags=flags, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see the output above)"


def _readme_python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    commands = [c for c in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "pip install" in c]
    assert [c.strip() for c in commands] == [
        'pip install -e ".[cpu]" && keras-resnet train',
        'pip install -e ".[test]" && python -m pytest -q',
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci


@pytest.mark.slow
def test_readme_python_snippets_run(tmp_path):
    blocks = _readme_python_blocks()
    assert blocks
    script = "\n".join(blocks)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_all_lists_exactly_the_public_api():
    public = {
        name
        for name in dir(keras_resnet)
        if not name.startswith("_") and not isinstance(getattr(keras_resnet, name), type(keras_resnet))
    }
    assert len(keras_resnet.__all__) == len(set(keras_resnet.__all__)), "a name is listed twice in __all__"
    assert sorted(public - set(keras_resnet.__all__)) == [], "public names missing from keras_resnet.__all__"
    assert [name for name in keras_resnet.__all__ if not hasattr(keras_resnet, name)] == []


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_code_passes_ruff(command):
    """The ruff configuration of pyproject.toml holds for the whole tree (run `ruff check --fix . && ruff format .`)."""
    result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-1000:]


def _imports(folder):
    """`(module file, imported keras_resnet module)` for every import in a package folder, lazy ones too."""
    import ast

    for path in sorted((ROOT / "keras_resnet" / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            yield from ((path.relative_to(ROOT).as_posix(), name) for name in names if name.startswith("keras_resnet"))


@pytest.mark.parametrize(
    "folder, forbidden",
    [("models", ("data", "training", "export")), ("data", ("models", "training", "export"))],
)
def test_models_and_data_stand_side_by_side(folder, forbidden):
    prefixes = tuple(f"keras_resnet.{name}" for name in forbidden)
    wrong = [(path, name) for path, name in _imports(folder) if name.startswith(prefixes)]
    assert not wrong, f"keras_resnet/{folder} must not import {', '.join(prefixes)}: {wrong}"
