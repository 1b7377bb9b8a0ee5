"""The local engine: the SAM stack on an embedded AWS (moto), in one process."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from typing import Any


class _DeferredBackends:
    """Stands for a moto service's backend dictionary until something looks into it."""

    def __init__(self, module: str, name: str) -> None:
        self._where = (module, name)

    def _loaded(self) -> Any:
        module, name = self._where
        return getattr(importlib.import_module(module), name)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(…, BackendDict) holds, as moto's dispatch checks
        return type(self._loaded())

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loaded(), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __contains__(self, key: object) -> bool:
        return key in self._loaded()

    def __len__(self) -> int:
        return len(self._loaded())


def _defer_moto_package(package_name: str, backends: str) -> None:
    """Import moto package `package_name` without loading its models until they are used.

    moto's Step Functions interpreter imports `moto.batch.utils` (for its Batch integration)
    and moto's SSM imports `moto.ec2` (for tag-targeted commands); each package's init loads
    its models, and EC2's decode EC2's region and instance-type data: about 2.5 s of every
    engine start-up, for services this stack never calls. Here the package's submodules import
    as usual and its `<service>_backends` is loaded from `.models` on first use.
    """
    if package_name in sys.modules:
        return
    spec = importlib.util.find_spec(package_name)
    if spec is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    models = f"{package_name}.models"

    def __getattr__(name: str) -> Any:  # the module's PEP 562 hook
        if name != backends:
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}")
        if models in sys.modules:
            return getattr(sys.modules[models], name)
        return _DeferredBackends(models, name)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[package_name] = package


_defer_moto_package("moto.batch", "batch_backends")
_defer_moto_package("moto.ec2", "ec2_backends")
