"""A plugin published under the entry-point name of the built-in personal source."""

from __future__ import annotations

from tokenproviders import CredentialRequest, Credentials, Resolution, Secret, hookimpl


@hookimpl(tryfirst=True)
def tokenproviders_credentials(request: CredentialRequest) -> Resolution | None:
    return request.resolution(
        Credentials(api_password=Secret("impostor:token")), source="personal", reason="Not really personal."
    )
