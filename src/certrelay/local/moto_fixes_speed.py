"""What the local engine changes in moto 5.2.5 only to spend less time, the same answers given.

Each fix is a context manager, entered by `applied()` while the engine runs; each says what moto
does, why it costs, and why the change cannot alter a result (tests/functional/
test_moto_fixes_speed.py holds each to that). Like moto_fixes, it hooks moto's internals: a moto
upgrade is a deliberate step with the whole suite re-run.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import botocore.regions
import moto.core.responses
from botocore import xform_name
from botocore.endpoint_provider import EndpointProvider
from botocore.hooks import EVENT_ALIASES, EventAliaser
from moto import settings
from moto.core import serialize
from moto.core.base_backend import BaseBackend
from moto.core.routing import SmithyRule

# The types a JSON document is made of, as json.loads makes them.
_ATOMIC: frozenset[type] = frozenset({str, int, float, bool, type(None)})


class _NotJson(Exception):
    """A value holds something json.loads does not make: copy.deepcopy copies it."""


def _copy_json(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotJson
            copied[key] = item if type(item) in _ATOMIC else _copy_json(item)
        return copied
    if kind is list:
        return [item if type(item) in _ATOMIC else _copy_json(item) for item in value]
    if kind in _ATOMIC:
        return value
    raise _NotJson


def json_deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """copy.deepcopy, a few times faster for a JSON document (dicts with string keys, lists,
    strings, numbers, booleans, None: what a state's input, output and context are). Anything
    else, or a `memo`, goes to copy.deepcopy whole. One difference, only for JSON documents: a
    list or dict that appears twice in `value` is copied twice, where deepcopy keeps the two
    places sharing one copy; a JSON document on AWS has no shared parts (it is text), so the
    copy is what AWS would hold."""
    if memo is not None:
        return copy.deepcopy(value, memo)
    try:
        return _copy_json(value)
    except (_NotJson, RecursionError):
        return copy.deepcopy(value)


class _CopyModule(ModuleType):
    """The `copy` module as moto's interpreter modules see it: deepcopy is json_deepcopy."""

    def __init__(self) -> None:
        super().__init__("copy")
        self.deepcopy = json_deepcopy
        self.copy = copy.copy

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@contextlib.contextmanager
def interpreter_copies_json_directly() -> Iterator[None]:
    """moto's Step Functions interpreter deep-copies each state's input, result and context
    (and every history event's details) with copy.deepcopy, whose memo and per-object dispatch
    cost several times what a JSON document needs: here those modules' `copy.deepcopy` is
    `json_deepcopy`, which copies a JSON document by its types and hands anything else
    (the interpreter's own objects) to copy.deepcopy."""
    shim = _CopyModule()
    with contextlib.ExitStack() as patches:
        for name, module in list(sys.modules.items()):
            if name.startswith("moto.stepfunctions.parser.") and (
                getattr(module, "copy", None) is copy
            ):
                patches.enter_context(mock.patch.object(module, "copy", shim))
        yield


@contextlib.contextmanager
def routers_compile_url_builders_when_used() -> Iterator[None]:
    """moto routes a REST request (Lambda, Security Hub, S3's control, Scheduler …) through a
    Werkzeug map of every operation of the service, built on the service's first request.
    Werkzeug compiles two URL builders for each rule as it adds it (Python source made, parsed
    and exec'd); moto only matches requests against the map and never builds a URL. Here a
    rule's builders are compiled the first time one is called, as Werkzeug would have compiled
    them (Lambda's and Security Hub's maps: 2-3 times faster to build)."""
    compile_builder: Callable[..., Any] = SmithyRule._compile_builder

    def compile_when_used(rule: Any, append_unknown: bool = True) -> Callable[..., Any]:
        compiled: list[Callable[..., Any]] = []

        def build(bound: Any, *args: Any, **kwargs: Any) -> Any:
            if not compiled:
                compiled.append(compile_builder(bound, append_unknown).__get__(bound, None))
            return compiled[0](*args, **kwargs)

        return build

    with mock.patch.object(SmithyRule, "_compile_builder", compile_when_used):
        yield


@contextlib.contextmanager
def clients_share_event_aliases() -> Iterator[None]:
    """botocore renames some event names for every client (EventAliaser: an old service name
    to its new one) and keeps each answer in a cache that every new client starts empty (a
    client's emitter is a copy of its session's, and moto, boto3 and each function make
    sessions of their own): about 1,750 names worked out again, about 30 µs each, in a demo's
    55 clients. The answer depends only on the name and the alias table, so here a copy
    shares its original's cache, and every aliaser made with botocore's own table (every
    session's) shares one; an aliaser or copy with another table keeps its own."""
    default_answers: dict[str, str] = {}
    make = EventAliaser.__init__

    def init(aliaser: Any, event_emitter: Any, event_aliases: Any = None) -> None:
        make(aliaser, event_emitter, event_aliases)
        if aliaser._event_aliases is EVENT_ALIASES:  # botocore's stubs do not name it
            aliaser._alias_name_cache = default_answers

    def shared_copy(aliaser: Any) -> Any:
        twin: Any = type(aliaser)(copy.copy(aliaser._emitter), copy.copy(aliaser._event_aliases))
        if twin._event_aliases == aliaser._event_aliases:
            twin._alias_name_cache = aliaser._alias_name_cache
        return twin

    with (
        mock.patch.object(EventAliaser, "__init__", init),
        mock.patch.object(EventAliaser, "__copy__", shared_copy),
    ):
        yield


@contextlib.contextmanager
def clients_share_endpoint_rulesets() -> Iterator[None]:
    """Every botocore client builds its service's endpoint rule set into objects again (a
    tree of rules and conditions; S3's is large) and keeps its own cache of the endpoints it
    resolved. The rule set's data is one object per process (models_loaded_once), and the
    built provider is only read: its answer depends on the rule set, the partitions and the
    parameters of each call. Here clients given the very same data (by identity) share one
    provider, and so its resolved endpoints too. A demo built 55 providers (16-20 ms) and
    evaluated a rule set 68 times (10-13 ms); now 16 (4-5 ms) and 31 times (6-8 ms)."""
    make: Callable[..., Any] = EndpointProvider  # what botocore.regions calls
    lock = threading.Lock()
    made: dict[tuple[int, int, Any], tuple[Any, Any, Any]] = {}

    def shared_provider(ruleset_data: Any, partition_data: Any, excluded_params: Any = None) -> Any:
        key = (id(ruleset_data), id(partition_data), frozenset(excluded_params or ()))
        with lock:
            found = made.get(key)
        if found is not None and found[0] is ruleset_data and found[1] is partition_data:
            return found[2]
        provider = make(
            ruleset_data=ruleset_data,
            partition_data=partition_data,
            excluded_params=excluded_params,
        )
        with lock:  # the data is kept with it, so no other object takes its ids
            made[key] = (ruleset_data, partition_data, provider)
        return provider

    with mock.patch.object(botocore.regions, "EndpointProvider", shared_provider):
        yield


class ClassFunctions:
    """The names `inspect.getmembers(cls, inspect.isfunction)` lists, answered one name at a
    time: `name in ClassFunctions(cls)` is True when the class has an attribute `name` that
    is a plain function and `name` is in `dir(cls)` (the class's and its bases' namespaces),
    as getmembers finds it; looked up when asked, so a method patched in or out since is seen."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            value = getattr(self.cls, name)
        except AttributeError:
            return False
        return inspect.isfunction(value) and any(name in vars(k) for k in self.cls.__mro__)


@contextlib.contextmanager
def actions_found_by_name() -> Iterator[None]:
    """moto answers a request only if its action names a method of the service's response
    class, and to know that it lists every function of the class (`inspect.getmembers`: each
    of a few hundred attributes fetched and tested, about 0.1 ms a request) and then looks
    for the one name in the list. Here the class is asked about that one name, with
    getmembers' own test (ClassFunctions); call_action uses the answer only for `in`."""
    with mock.patch.object(moto.core.responses, "method_names_from_class", ClassFunctions):
        yield


_KeysKey = tuple[str, int, int, type, bool]


def _possible_keys(
    context: Any,
    xformed: bool,
    providers: list[Any],
    cache: dict[_KeysKey, tuple[Any, Any, tuple[str, ...]]],
) -> Iterator[str]:
    """What moto's get_possible_keys yields with `providers` (its defaults: ExplicitAlias,
    which reads the object's own Meta and is asked every time, then providers whose answers
    depend only on the member's name, its shape, the shape's parent, set by the serializer
    before each member, and the object's class: those are kept in `cache`)."""
    key, shape = context.key, context.shape
    parent = getattr(shape, "parent", None)
    cache_key = (key, id(shape), id(parent), context.obj.__class__, xformed)
    found = cache.get(cache_key)
    if found is not None and found[0] is shape and found[1] is parent:
        rest = found[2]
    else:
        keys: list[str] = []
        for provider_class in providers[1:]:
            provider = provider_class(context)
            if provider.has_alias(key):
                alias = provider.get_alias(key)
                keys.append(alias)
                if xformed:
                    keys.append(xform_name(alias))
        rest = tuple(keys)
        cache[cache_key] = (shape, parent, rest)  # kept with them: no other object takes the ids
    explicit = providers[0](context)
    if explicit.has_alias(key):
        alias = explicit.get_alias(key)
        yield alias
        if xformed:
            yield xform_name(alias)
    yield from rest


@contextlib.contextmanager
def serializers_remember_member_aliases() -> Iterator[None]:
    """moto's response serializer finds each member's value on the backend's object by trying
    the names its alias providers give (the member's name, its shape's, its snake_case form
    …): for every member of every response it makes six provider objects and asks each again.
    Here what the providers after ExplicitAlias answer is kept per member name, shape, parent
    shape and object class (all it depends on), and the names are tried in the same order;
    ExplicitAlias, which reads the object's own Meta, is still asked every time. Only moto's
    two pickers with the default providers are changed; any other keeps its own code."""
    cache: dict[_KeysKey, tuple[Any, Any, tuple[str, ...]]] = {}
    defaults = list(serialize.DEFAULT_ALIAS_PROVIDERS)  # changed later: the pickers' own code
    assert defaults[0] is serialize.ExplicitAlias, "moto's alias providers changed"
    plain: Any = serialize.AttributePicker.get_possible_keys
    xformed: Any = serialize.XFormedAttributePicker.get_possible_keys

    def plain_keys(picker: Any, context: Any) -> Any:
        if type(picker) is serialize.AttributePicker and picker.alias_providers == defaults:
            return _possible_keys(context, False, defaults, cache)
        return plain(picker, context)  # XFormedAttributePicker's own calls this (super())

    def xformed_keys(picker: Any, context: Any) -> Any:
        if type(picker) is serialize.XFormedAttributePicker and picker.alias_providers == defaults:
            return _possible_keys(context, True, defaults, cache)
        return xformed(picker, context)

    with (
        mock.patch.object(serialize.AttributePicker, "get_possible_keys", plain_keys),
        mock.patch.object(serialize.XFormedAttributePicker, "get_possible_keys", xformed_keys),
    ):
        yield


@contextlib.contextmanager
def backends_remember_their_urls() -> Iterator[None]:
    """To answer a request, moto asks the service's backend for its URL patterns (`urls`), and
    the backend works them out again every time: each of its paths formatted with each of its
    URL bases, and the China and ISO variants made with a regular expression (S3's backend
    first reloads its `urls` module, whose bases follow MOTO_S3_CUSTOM_ENDPOINTS): a demo's
    389 requests, 47 ms of thread CPU. What they depend on is the backend's class and those two
    settings, so here the patterns are worked out once for each class and settings (21 ms, most
    of it each backend's first request); each caller gets its own copy of the table, as moto's
    property gives."""
    work_out: Callable[[Any], dict[str, Any]] = BaseBackend.urls.fget  # type: ignore[attr-defined]
    lock = threading.Lock()
    known: dict[tuple[type, bool, tuple[str, ...]], dict[str, Any]] = {}

    def urls(backend: Any) -> dict[str, Any]:
        key = (type(backend), settings.enable_iso_regions(), (*settings.get_s3_custom_endpoints(),))
        with lock:
            found = known.get(key)
        if found is None:
            found = work_out(backend)
            with lock:
                known[key] = found
        return dict(found)

    with mock.patch.object(BaseBackend, "urls", property(urls)):
        yield


@contextlib.contextmanager
def applied() -> Iterator[None]:
    """Every fix of this module, for as long as the engine runs."""
    with (
        interpreter_copies_json_directly(),
        routers_compile_url_builders_when_used(),
        clients_share_event_aliases(),
        clients_share_endpoint_rulesets(),
        actions_found_by_name(),
        serializers_remember_member_aliases(),
        backends_remember_their_urls(),
    ):
        yield
