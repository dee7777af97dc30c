"""Plugins the plugin-author guide (docs/plugin-authors.md) quotes between ``# [start NAME]`` and
``# [end NAME]``; ``test_doc_snippets.py`` runs each of them."""

from __future__ import annotations

# [start credential-source]
from collections.abc import Mapping

from tokenproviders import CredentialRequest, Credentials, Resolution, Secret, hookimpl


class VaultSource:
    """Credentials the host keeps in its own vault, per user, tenant and tracker URL."""

    def __init__(self, vault: Mapping[tuple[str, str, str], str]) -> None:
        self.vault = vault  # (user, tenant, tracker URL) -> token; a real one would call the vault's API

    @hookimpl  # no tryfirst/trylast: personal tokens always come first, the bot last
    def tokenproviders_credentials(self, request: CredentialRequest) -> Resolution | None:
        tracker = request.tracker
        # Keyed by tenant too: another tenant's administrator may add a tracker with the same
        # URL, and choose where its client talks (api_url) and how it checks TLS.
        token = self.vault.get((request.user, tracker.tenant, tracker.url))
        if token is None:
            return None  # defer: the next source (finally the bot) decides
        return request.resolution(
            Credentials(api_password=Secret(token)),
            source="vault",
            scope=tracker.tenant,  # the tenant this secret is for: the endpoint rule reads it
            reason=f"Using {request.user}'s token from the vault for {tracker.url}.",
        )


# [end credential-source]

# [start observer]
import logging  # noqa: E402 - each snippet shows its own imports

audit_log = logging.getLogger("myhost.audit")


class AuditObserver:
    """Records who acted with which kind of credentials; never the credentials themselves."""

    @hookimpl
    def tokenproviders_resolved(self, resolution: Resolution) -> None:
        audit_log.info(
            "%s acts on %s/%s with %s credentials",
            resolution.user,
            resolution.tenant,
            resolution.tracker.id,
            resolution.source,
        )


# [end observer]

# [start key-provider]
import base64  # noqa: E402 - each snippet shows its own imports
import os  # noqa: E402

from tokenproviders.crypto import KeyMaterial  # noqa: E402


class EnvironmentKMS:
    """Keys from the host's KMS; here, a base64 key in an environment variable."""

    @hookimpl
    def tokenproviders_keys(self) -> KeyMaterial | None:
        encoded = os.environ.get("MYHOST_TOKEN_KEY")
        if encoded is None:
            return None  # let the next provider, the variable or the key file supply keys
        return KeyMaterial(keys={"myhost-1": base64.b64decode(encoded)}, primary="myhost-1")


# [end key-provider]
