"""PyGithub's HTTP connections, refusing every redirect and every credential from the host's
environment (``~/.netrc``, see :func:`~tokenproviders.trackertype.isolate_session`).

Imported by :meth:`~tokenproviders_github.GitHubTrackerType.build_client` only: importing this
module imports PyGithub.

PyGithub asks ``requests`` not to follow redirects, then follows a 301 itself (re-sending the
request, the issue included, to the path it names) and turns a 301 to another host into a bare
``RuntimeError``; a 302 or 307 comes back as an empty answer. GitHub's API redirects only for a
renamed or moved repository, and the answer to that is to configure the new address. So every
3xx is refused here, before PyGithub looks at it, with :class:`GitHubAnswerError`.
"""

from __future__ import annotations

from typing import Any

from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass

from tokenproviders import PluginError
from tokenproviders.trackertype import isolate_session

from . import redirect_error

__all__ = ["refuse_redirects"]


def _origin(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class _HTTPSConnection(HTTPSRequestsConnectionClass):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        isolate_session(self.session, _origin("https", self.host, self.port))

    def getresponse(self) -> Any:
        response = super().getresponse()
        if 300 <= response.status < 400:
            response.response.close()
            raise redirect_error(response.status)
        return response


class _HTTPConnection(HTTPRequestsConnectionClass):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        isolate_session(self.session, _origin("http", self.host, self.port))

    def getresponse(self) -> Any:
        response = super().getresponse()
        if 300 <= response.status < 400:
            response.response.close()
            raise redirect_error(response.status)
        return response


def refuse_redirects(client: Any) -> None:
    """Make ``client`` (a ``github.Github``) refuse every redirect.

    PyGithub picks its connection class per requester from the API root's scheme and has no
    public setting for it (``Requester.injectConnectionClasses`` would change every client in the
    process), so this replaces the one the requester chose; the plugin's tests check that it
    takes effect.
    """
    requester = client.requester
    attribute = "_Requester__connectionClass"
    current = getattr(requester, attribute, None)
    if current is HTTPSRequestsConnectionClass:
        setattr(requester, attribute, _HTTPSConnection)
    elif current is HTTPRequestsConnectionClass:
        setattr(requester, attribute, _HTTPConnection)
    else:  # pragma: no cover - a PyGithub this plugin does not know
        raise PluginError(
            "tokenproviders-github cannot refuse redirects with this PyGithub version",
            hint="install the PyGithub version the plugin was tested with (see its README)",
        )
