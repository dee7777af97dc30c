"""Resolution policies: strict personal credentials, and opt-in fallback for unusable tokens.

The default never falls back silently: an expired, undecryptable or rejected personal token is
an error. A :class:`Policy` may require personal credentials (the bot is never used) or allow
falling back to the bot when a personal token is unusable (the resolution then says so), and
may let tokens scoped to all tenants reach a tracker whose TLS is weakened. :class:`Policies`
picks the policy of a tracker: the tracker's own, else its tenant's, else the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import ConfigurationError
from .model import Tracker

__all__ = ["Policy", "Policies"]


@dataclass(frozen=True)
class Policy:
    """How one tracker resolves.

    ``require_personal``: never use bot credentials; without a usable personal token (or a
    third-party source) the resolution fails with :class:`NoCredentialsError`.
    ``fallback_on_unusable``: when a personal token exists but is expired, undecryptable or
    rejected, use the next source instead of failing; the resolution's reason says so.
    ``allow_all_tenants_tokens_on_weak_tls``: send personal tokens scoped to all tenants (and
    third-party sources' secrets not scoped to the tracker's tenant) to this tracker although it
    does not verify TLS certificates or trusts its own CA bundle. Off by default: such a tracker
    may be any tenant administrator's, and only a token scoped to its tenant goes there.
    """

    require_personal: bool = False
    fallback_on_unusable: bool = False
    allow_all_tenants_tokens_on_weak_tls: bool = False

    def __post_init__(self) -> None:
        for name in ("require_personal", "fallback_on_unusable", "allow_all_tenants_tokens_on_weak_tls"):
            if not isinstance(getattr(self, name), bool):
                # Policy(require_personal="no") must not silently mean True.
                raise ConfigurationError(f"Policy.{name} must be True or False, not {getattr(self, name)!r}")


@dataclass(frozen=True)
class Policies:
    """Policies by scope: ``trackers[(tenant, tracker_id)]`` over ``tenants[tenant]`` over
    ``default``."""

    default: Policy = field(default_factory=Policy)
    tenants: Mapping[str, Policy] = field(default_factory=dict)
    trackers: Mapping[tuple[str, str], Policy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for value in [self.default, *self.tenants.values(), *self.trackers.values()]:
            if not isinstance(value, Policy):
                raise ConfigurationError(f"policies must be Policy objects, not {type(value).__name__}")
        for key in self.trackers:
            if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
                raise ConfigurationError(
                    f"Policies.trackers keys must be (tenant, tracker_id) tuples, not {key!r}",
                )
        for tenant in self.tenants:
            if not isinstance(tenant, str):
                raise ConfigurationError(f"Policies.tenants keys must be tenant ids, not {tenant!r}")
        object.__setattr__(self, "tenants", MappingProxyType(dict(self.tenants)))
        object.__setattr__(self, "trackers", MappingProxyType(dict(self.trackers)))

    def for_tracker(self, tracker: Tracker) -> Policy:
        """The policy that applies to ``tracker``."""
        if self.trackers:
            policy = self.trackers.get((tracker.tenant, tracker.id))
            if policy is not None:
                return policy
        return self.tenants.get(tracker.tenant, self.default) if self.tenants else self.default
