"""Policy and Policies take only well-formed settings, and a built Policies cannot change under
the resolver (mutation testing found none of this checked)."""

from __future__ import annotations

import dataclasses

import pytest

from tokenproviders import ConfigurationError, Policies, Policy, Tracker

FIELDS = [f.name for f in dataclasses.fields(Policy)]


def _tracker(tenant: str, tracker_id: str) -> Tracker:
    return Tracker(tenant=tenant, id=tracker_id, type="memory", base_url=f"https://{tenant}.example.com")


@pytest.mark.parametrize("name", FIELDS)
def test_every_policy_switch_is_off_by_default(name: str) -> None:
    assert getattr(Policy(), name) is False


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_policy_switch_must_be_a_bool(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=rf"Policy\.{name} must be True or False"):
        Policy(**{name: value})  # type: ignore[arg-type]


def test_a_policy_cannot_be_changed_after_it_is_built() -> None:
    policy = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.require_personal = True  # type: ignore[misc]
    policies = Policies()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policies.default = Policy(require_personal=True)  # type: ignore[misc]


@pytest.mark.parametrize(
    "key",
    ["acme", ("acme",), ("acme", "repo", "extra"), ("acme", 1), (1, "repo")],
    ids=["str", "one", "three", "int-id", "int-tenant"],
)
def test_tracker_policies_are_keyed_by_tenant_and_tracker_id(key: object) -> None:
    with pytest.raises(ConfigurationError, match=r"Policies\.trackers keys must be \(tenant, tracker_id\) tuples"):
        Policies(trackers={key: Policy()})  # type: ignore[dict-item]


@pytest.mark.parametrize("key", [("acme",), 1, None])
def test_tenant_policies_are_keyed_by_tenant_id(key: object) -> None:
    with pytest.raises(ConfigurationError, match=r"Policies\.tenants keys must be tenant ids"):
        Policies(tenants={key: Policy()})  # type: ignore[dict-item]


def test_changing_the_dicts_given_does_not_change_the_policies() -> None:
    strict = Policy(require_personal=True)
    tenants = {"acme": strict}
    trackers = {("beta", "repo"): strict}
    policies = Policies(tenants=tenants, trackers=trackers)
    tenants["acme"] = Policy()
    tenants["beta"] = strict
    trackers[("beta", "repo")] = Policy()
    trackers[("acme", "repo")] = Policy()
    assert policies.for_tracker(_tracker("acme", "repo")) == strict
    assert policies.for_tracker(_tracker("beta", "repo")) == strict
    assert policies.for_tracker(_tracker("beta", "other")) == Policy()
    assert dict(policies.tenants) == {"acme": strict}
    assert dict(policies.trackers) == {("beta", "repo"): strict}


def test_the_policies_mappings_are_read_only() -> None:
    policies = Policies(tenants={"acme": Policy()}, trackers={("acme", "repo"): Policy()})
    with pytest.raises(TypeError):
        policies.tenants["acme"] = Policy(require_personal=True)  # type: ignore[index]
    with pytest.raises(TypeError):
        policies.trackers[("acme", "repo")] = Policy(require_personal=True)  # type: ignore[index]
