"""The plugin manager facade: what a broken plugin may not do to the host."""

from __future__ import annotations

import pytest

from tokenproviders import CredentialRequest, PluginError, Plugins, Resolution, Resolver, hookimpl
from tokenproviders.hookspecs import PROJECT_NAME

from .core_world import World, assert_actionable, creds


class Misspelled:
    @hookimpl
    def tokenproviders_credential(self, request: CredentialRequest) -> None:
        return None


class HalfValid:
    """A valid credential source whose observer has a signature the spec does not know."""

    @hookimpl
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        return request.resolution(creds("half-valid"), source="half", reason="Half valid.")

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution, extra: object) -> None:
        return None


class Observer:
    def __init__(self) -> None:
        self.count = 0

    @hookimpl
    def tokenproviders_resolved(self) -> None:
        self.count += 1


def test_a_misspelled_hook_breaks_only_its_plugin(world: World, resolver: Resolver) -> None:
    with pytest.raises(PluginError) as excinfo:
        world.plugins.register(Misspelled(), name="misspelled")
    assert "unknown hook(s) tokenproviders_credential " in excinfo.value.message
    assert_actionable(excinfo.value)
    assert not world.plugins.manager.has_plugin("misspelled")
    world.plugins.manager.check_pending()  # the host is not poisoned
    observer = Observer()
    with world.plugins.registered(observer):  # later registrations still work
        assert resolver.resolve("bob", world.acme_repo).source == "bot"
    assert observer.count == 1


def test_a_plugin_failing_validation_is_not_left_half_registered(world: World, resolver: Resolver) -> None:
    with pytest.raises(PluginError) as excinfo:
        world.plugins.register(HalfValid(), name="half")
    assert "PluginValidationError" in excinfo.value.message
    assert not world.plugins.manager.has_plugin("half")
    assert "half" in world.plugins.broken()
    assert resolver.resolve("bob", world.acme_repo).source == "bot"


def test_a_duplicate_name_does_not_unregister_the_first_plugin(world: World) -> None:
    observer = Observer()
    world.plugins.register(observer, name="audit")
    with pytest.raises(PluginError):
        world.plugins.register(Observer(), name="audit")
    assert world.plugins.manager.get_plugin("audit") is observer


def test_a_tracker_type_name_can_be_provided_once(world: World) -> None:
    from tokenproviders.testing.memory_tracker import MemoryTrackerPlugin, MemoryTrackerType

    with pytest.raises(PluginError) as excinfo:
        world.plugins.register(MemoryTrackerPlugin(MemoryTrackerType()), name="second-memory")
    assert "already provided by plugin" in excinfo.value.message
    assert world.plugins.tracker_type("memory") is world.tracker_type


def test_no_plugin_manager_exists_at_import_time() -> None:
    import tokenproviders
    import tokenproviders.plugins

    for module in (tokenproviders, tokenproviders.plugins):
        assert not any(isinstance(value, Plugins) for value in vars(module).values())
    assert PROJECT_NAME == "tokenproviders"
