"""A plugin whose hook name is misspelled (``credential`` for ``credentials``)."""

from __future__ import annotations

from tokenproviders import CredentialRequest, hookimpl


@hookimpl
def tokenproviders_credential(request: CredentialRequest) -> None:
    return None
