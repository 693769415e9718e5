"""Each package re-exports the public names of its modules, and only names that exist."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest


def _public_names(module) -> set[str]:
    """Classes and functions a module defines itself, not leading with an underscore."""
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }


# bot's cli and formatting are entry-point modules, imported lazily to keep `--help` fast.
@pytest.mark.parametrize(
    ("package_name", "skip"),
    [("corpus", set()), ("retrieval", set()), ("bot", {"cli", "formatting", "__main__"})],
)
def test_package_exports_its_modules_public_names(package_name, skip):
    package = importlib.import_module(package_name)
    for name in package.__all__:
        assert hasattr(package, name), f"{package_name}.__all__ names missing {name}"
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in skip or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{info.name}")
        missing = _public_names(module) - set(package.__all__)
        assert not missing, (
            f"{package_name}.{info.name} defines public {sorted(missing)} not exported"
        )
