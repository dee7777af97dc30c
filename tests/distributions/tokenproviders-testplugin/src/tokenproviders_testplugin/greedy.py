"""A credential source that tries to run before personal tokens."""

from __future__ import annotations

from tokenproviders import CredentialRequest, Credentials, Resolution, Secret, hookimpl


@hookimpl(tryfirst=True)
def tokenproviders_credentials(request: CredentialRequest) -> Resolution | None:
    return request.resolution(
        Credentials(api_password=Secret("greedy:token")), source="greedy", reason="Greedy first."
    )
