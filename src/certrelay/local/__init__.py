"""The local engine: the SAM stack on an embedded AWS (moto), in one process."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
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


_DEFERRED = {"moto.batch": "batch_backends", "moto.ec2": "ec2_backends"}  # package -> backends


class _ModelsWhenUsed(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a few moto packages without loading their models until they are used.

    moto's Step Functions interpreter imports `moto.batch.utils` (for its Batch integration)
    and moto's SSM imports `moto.ec2` (for tag-targeted commands); each package's init loads
    its models, and EC2's decode EC2's region and instance-type data: about 2.5 s of every
    engine start-up, for services the stack rarely or never calls. Here such a package's
    submodules import as usual and its `<service>_backends` comes from `.models` on first use.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec.loader = self  # the package's directory and name as found; its init not run
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        package, backends = module.__name__, _DEFERRED[module.__name__]
        models = f"{package}.models"

        def __getattr__(name: str) -> Any:  # the module's PEP 562 hook
            if name != backends:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            if models in sys.modules:
                return getattr(sys.modules[models], name)
            return _DeferredBackends(models, name)

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


if not any(isinstance(finder, _ModelsWhenUsed) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ModelsWhenUsed())
