"""Test helpers for hosts and plugin authors: fake trackers, fixtures and contract tests.

Nothing here is imported by the runtime library; it exists so that a host can unit-test its
integration and a plugin author can prove their tracker type against the same fakes we use.

* :mod:`tokenproviders.testing.pytest_plugin`: the pytest fixtures (``tp_resolver``,
  ``tp_world``, ``fake_jira``, ...), active wherever tokenproviders is installed, opt-in.
* :class:`TrackerTypeContract`: the test class a tracker-type plugin subclasses.
* :func:`build_world`: a directory, store and resolver from a small declarative description.
* :class:`FakeTracker` and its kit (:class:`AuthResult`, :class:`Response`,
  :func:`json_response`, :func:`bearer_token`, :func:`basic_credentials`): build a fake server
  for a tracker we do not ship; the fakes we ship are in :mod:`tokenproviders.testing.fakes`.
* :class:`MemoryTrackerType`: a tracker type served from memory, no HTTP at all.

Names are loaded on first use, so importing this package costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .contract import (
        AuthExpectation,
        BasicAuth,
        ContractScenario,
        CredentialKind,
        Header,
        OtherJSONServer,
        QueryParam,
        TrackerTypeContract,
        load_plugin,
        printed_with_locals,
        secret_forms,
    )
    from .fakes import FAKES
    from .fakes._server import (
        ANONYMOUS,
        AuthResult,
        FakeComment,
        FakeIssue,
        FakeTracker,
        FakeUser,
        RecordedRequest,
        Response,
        basic_credentials,
        bearer_token,
        json_response,
        utc_timestamp,
    )
    from .memory_tracker import MemoryTrackerBackend, MemoryTrackerPlugin, MemoryTrackerType
    from .store_contract import StoreContract
    from .world import DEFAULT_WORLD, World, build_world, credentials_from, register_on_fake

__all__ = [
    "ANONYMOUS",
    "AuthExpectation",
    "AuthResult",
    "BasicAuth",
    "ContractScenario",
    "CredentialKind",
    "DEFAULT_WORLD",
    "FAKES",
    "FakeComment",
    "FakeIssue",
    "FakeTracker",
    "FakeUser",
    "Header",
    "MemoryTrackerBackend",
    "MemoryTrackerPlugin",
    "MemoryTrackerType",
    "OtherJSONServer",
    "QueryParam",
    "RecordedRequest",
    "Response",
    "TrackerTypeContract",
    "World",
    "basic_credentials",
    "bearer_token",
    "build_world",
    "credentials_from",
    "json_response",
    "load_plugin",
    "printed_with_locals",
    "register_on_fake",
    "secret_forms",
    "StoreContract",
    "utc_timestamp",
]

_MODULES: dict[str, tuple[str, ...]] = {
    "contract": (
        "AuthExpectation",
        "BasicAuth",
        "ContractScenario",
        "CredentialKind",
        "Header",
        "OtherJSONServer",
        "QueryParam",
        "TrackerTypeContract",
        "load_plugin",
        "printed_with_locals",
        "secret_forms",
    ),
    "fakes": ("FAKES",),
    "fakes._server": (
        "ANONYMOUS",
        "AuthResult",
        "FakeComment",
        "FakeIssue",
        "FakeTracker",
        "FakeUser",
        "RecordedRequest",
        "Response",
        "basic_credentials",
        "bearer_token",
        "json_response",
        "utc_timestamp",
    ),
    "memory_tracker": ("MemoryTrackerBackend", "MemoryTrackerPlugin", "MemoryTrackerType"),
    "store_contract": ("StoreContract",),
    "world": ("DEFAULT_WORLD", "World", "build_world", "credentials_from", "register_on_fake"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
