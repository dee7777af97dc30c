"""URL normalization, the Secret type, the model's checks, and the error hierarchy."""

from __future__ import annotations

import copy
import pickle

import pytest

import tokenproviders
from tokenproviders import (
    ClientSettings,
    Credentials,
    Field,
    InvalidInputError,
    InvalidURLError,
    IssueDraft,
    Secret,
    TokenProvidersError,
    Tracker,
    errors,
    normalize_url,
    origin_of,
)
from tokenproviders.trackertype import TrackerFailure, tls_verify
from tokenproviders.urls import MAX_URL_LENGTH, is_normalized

from .core_world import assert_actionable, assert_no_secret

# -- URL normalization ---------------------------------------------------------------------------

SAME = [
    # (given, normalized)
    ("https://github.com/org/repo", "https://github.com/org/repo"),
    ("HTTPS://GitHub.COM/org/repo", "https://github.com/org/repo"),  # scheme and host, not path
    ("https://github.com/Org/Repo", "https://github.com/Org/Repo"),
    ("https://github.com:443/org/repo", "https://github.com/org/repo"),
    ("http://jira.test:80/jira", "http://jira.test/jira"),
    ("https://jira.test:80/jira", "https://jira.test:80/jira"),  # 80 is not https's default
    ("http://jira.test:8080/jira/", "http://jira.test:8080/jira"),
    ("https://github.com/org/repo/", "https://github.com/org/repo"),
    ("https://github.com/org/repo///", "https://github.com/org/repo"),
    ("https://github.com/", "https://github.com"),
    ("https://github.com", "https://github.com"),
    ("https://github.com/org/repo?tab=issues", "https://github.com/org/repo"),
    ("https://github.com/org/repo#readme", "https://github.com/org/repo"),
    ("https://github.com/org/repo/?a=1&b=2#x", "https://github.com/org/repo"),
    ("  https://github.com/org/repo  ", "https://github.com/org/repo"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ("https://[0:0:0:0:0:0:0:1]/x", "https://[::1]/x"),
    ("https://[2001:DB8::1]:443/", "https://[2001:db8::1]"),
    ("http://127.0.0.1:80/", "http://127.0.0.1"),
    ("https://bücher.example/", "https://xn--bcher-kva.example"),
    ("https://BÜCHER.example/x", "https://xn--bcher-kva.example/x"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("https://redmine.test/projects/a%20b", "https://redmine.test/projects/a%20b"),
    ("https://tracker.test/a@b", "https://tracker.test/a@b"),  # an @ in the path is no user-info
]


@pytest.mark.parametrize(("given", "expected"), SAME)
def test_normalize(given: str, expected: str) -> None:
    assert normalize_url(given) == expected
    assert normalize_url(expected) == expected  # idempotent
    assert is_normalized(expected)


def test_origin_is_the_default_service_url() -> None:
    assert origin_of("HTTPS://GitHub.com:443/org/repo/?x#y") == "https://github.com"
    assert origin_of("http://jira.test:8080/jira") == "http://jira.test:8080"


REFUSED = [
    ("", "empty"),
    ("   ", "empty"),
    ("github.com/org/repo", "http"),
    ("//github.com/org/repo", "http"),
    ("ftp://files.test/x", "http"),
    ("file:///etc/passwd", "http"),
    ("javascript:alert(1)", "http"),
    ("https://", "no host"),
    ("https:github.com", "no host"),
    ("https://github.com:99999/", "malformed"),
    ("https://github.com:abc/", "malformed"),
    ("https://github.com:0/", "port 0"),
    ("https://[::1/x", "malformed"),
    ("https://[not-an-address]/", "malformed"),
    ("https://git hub.com/", "control"),
    ("https://github.com/a b", "control"),
    ("https://github.com/\x00", "control"),
    ("https://github.com/\x7f", "control"),
    ("https://github.com/a\nb", "control"),
    ("https://github.com\r\n/x", "control"),
    ("https://" + "a" * (MAX_URL_LENGTH - 7), "characters long"),
    (12, "string"),
]


@pytest.mark.parametrize(("given", "why"), REFUSED, ids=lambda v: repr(v)[:40])
def test_refused(given: str, why: str) -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url(given)
    assert why in excinfo.value.message
    assert_actionable(excinfo.value)
    assert len(str(excinfo.value)) < 400  # a long URL is not echoed whole
    assert not is_normalized(given)


def test_longest_url_accepted() -> None:
    url = "https://tracker.test/" + "a" * (MAX_URL_LENGTH - len("https://tracker.test/"))
    assert normalize_url(url) == url


USER_INFO = [
    "https://alice:hunter2@github.com/org/repo",
    "https://alice:hunter2@github.com",
    "https://:hunter2@github.com",
    "https://hunter2@github.com",
    "HTTPS://alice:hunter2@GitHub.com:443/x?y#z",
    "ftp://alice:hunter2@files.test",
    "https://alice:hunter2@github.com:99999/",  # malformed *and* user-info
    "https://alice:hunter2@[::1/x",
    "https://alice:hunter2@[::zz]/",
    "https://alice:hunter2@/x",
]


@pytest.mark.parametrize("given", USER_INFO)
def test_user_info_is_refused_without_echoing_the_password(given: str) -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url(given)
    assert_no_secret(excinfo.value, "hunter2")
    assert_actionable(excinfo.value)


def test_user_info_refusal_says_what_to_do() -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        normalize_url("https://alice:hunter2@github.com")
    assert "user-info" in excinfo.value.message
    assert "token" in excinfo.value.message


def test_tracker_refuses_a_url_with_user_info() -> None:
    with pytest.raises(InvalidURLError) as excinfo:
        Tracker(tenant="acme", id="gh", type="memory", base_url="https://bot:hunter2@github.com/acme/app")
    assert_no_secret(excinfo.value, "hunter2")
    with pytest.raises(InvalidURLError):
        Tracker(tenant="acme", id="gh", type="memory", base_url="https://github.com", api_url="ftp://x")


# -- Secret ---------------------------------------------------------------------------------------

def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2")
    credentials = Credentials(api_password=secret, api_username="alice")
    shown = [
        repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>30}", "%s" % secret, "%r" % secret,  # noqa: UP031
        repr(credentials), str(credentials), repr([secret]), repr({"k": secret}),
        repr(Tracker(tenant="acme", id="x", type="memory", base_url="https://x.test", bot_credentials=credentials)),
    ]
    for text in shown:
        assert "hunter2" not in text
    assert "*" in str(secret)
    assert secret.reveal() == "hunter2"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_cannot_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("hunter2"), protocol=protocol)
    with pytest.raises(TypeError):
        pickle.dumps(Credentials(api_password=Secret("hunter2")), protocol=protocol)


def test_secret_equality_and_immutability() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert Secret("") != Secret("a")
    assert not Secret("") and Secret("x")
    with pytest.raises(TypeError):
        hash(Secret("a"))
    secret = Secret("a")
    with pytest.raises(AttributeError):
        secret._value = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        secret.other = 1  # type: ignore[attr-defined]
    assert copy.copy(secret) is secret and copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_credentials_require_a_secret() -> None:
    with pytest.raises(TypeError) as excinfo:
        Credentials(api_password="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in str(excinfo.value)
    assert "Secret(" in str(excinfo.value)
    with pytest.raises(TypeError):
        Credentials(api_password=Secret("x"), api_username=3)  # type: ignore[arg-type]
    assert Credentials(api_password=Secret("x"), api_username="").api_username is None
    assert Credentials(api_password=Secret("x"), api_username="a").present_fields() == {"api_username", "api_password"}
    assert Credentials(api_password=Secret("")).present_fields() == frozenset()


# -- the model's other checks -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs",
    [
        {"tenant": ""},
        {"tenant": "*"},  # ALL_TENANTS is not a tenant
        {"tenant": " acme"},
        {"tenant": "a\tb"},
        {"id": ""},
        {"id": "x" * 201},
        {"type": ""},
        {"base_url": "not a url"},
    ],
)
def test_tracker_checks(kwargs: dict[str, str]) -> None:
    values = {"tenant": "acme", "id": "repo", "type": "memory", "base_url": "https://x.test"} | kwargs
    with pytest.raises(InvalidInputError) as excinfo:
        Tracker(**values)  # type: ignore[arg-type]
    assert_actionable(excinfo.value)


def test_tracker_refuses_verify_tls_off_with_a_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # Client libraries read the pair differently (no verification, or verification against
    # the bundle): the tracker does not let the plugin decide which.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # the host's bundle: see test_isolated_sessions
        monkeypatch.delenv(name, raising=False)

    def tracker(verify_tls: bool, ca_bundle: str | None) -> Tracker:
        return Tracker("acme", "repo", "memory", "https://x.test", verify_tls=verify_tls, ca_bundle=ca_bundle)

    with pytest.raises(InvalidInputError, match="contradict") as excinfo:
        tracker(False, "/ca.pem")
    assert_actionable(excinfo.value)
    assert tls_verify(tracker(False, None)) is False
    assert tls_verify(tracker(True, "/ca.pem")) == "/ca.pem"
    assert tls_verify(tracker(True, None)) is True


def test_tracker_defaults_and_read_only_options() -> None:
    tracker = Tracker(tenant="acme", id="repo", type="memory", base_url="HTTPS://X.test/", options={"project": "P"})
    assert tracker.name == "repo" and tracker.url == "https://x.test"
    with pytest.raises(TypeError):
        tracker.options["project"] = "Q"  # type: ignore[index]


def test_other_value_checks() -> None:
    with pytest.raises(InvalidInputError):
        Field("api_token", "Token")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        Field("api_password", "")
    with pytest.raises(InvalidInputError):
        IssueDraft(title=" ")
    with pytest.raises(InvalidInputError):
        ClientSettings(timeout=0)
    with pytest.raises(InvalidInputError):
        ClientSettings(timeout=301)
    with pytest.raises(InvalidInputError):
        ClientSettings(retries=6)


# -- the error hierarchy --------------------------------------------------------------------------

ERROR_CLASSES = [getattr(errors, name) for name in errors.__all__]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_says_what_to_do_next(cls: type[TokenProvidersError]) -> None:
    assert issubclass(cls, TokenProvidersError)
    assert cls.default_hint.strip()
    assert cls.default_hint != TokenProvidersError.default_hint or cls is TokenProvidersError
    error = cls("something went wrong")
    assert_actionable(error)


def test_the_design_names_every_error_the_issue_asks_for() -> None:
    for name in (
        "NotAuthorizedError", "NoCredentialsError", "InvalidCredentialsError", "UnknownTrackerTypeError",
        "PersonalTokenUnusableError", "CredentialsRejectedError", "TrackerUnavailableError",
    ):
        assert issubclass(getattr(tokenproviders, name), TokenProvidersError)


def test_secret_with_a_lone_surrogate_compares_without_quoting_it() -> None:
    # str.encode() would raise UnicodeEncodeError quoting the character: a leak of part of it.
    odd = Secret("tok\udc80en")
    assert odd == Secret("tok\udc80en")
    assert odd != Secret("token")


def test_requests_errors_are_named_without_the_library_text() -> None:
    import json

    from tokenproviders.trackertype import classify_requests_error

    requests = pytest.importorskip("requests")

    def classify(exc: BaseException) -> object:
        return classify_requests_error(exc, redirect_detail="redirected", not_json_detail="not JSON")

    refused = requests.exceptions.ConnectionError(OSError("x", ConnectionRefusedError("token=abc")))
    assert classify(refused) == TrackerFailure("unavailable", "connection refused")
    assert classify(requests.exceptions.ConnectTimeout("token=abc")) == TrackerFailure(
        "unavailable", "connecting timed out"
    )
    assert classify(json.JSONDecodeError("x", "doc", 0)) == TrackerFailure("not_found", "not JSON")
    response = requests.Response()
    response.status_code = 302
    assert classify(requests.exceptions.TooManyRedirects(response=response)) == TrackerFailure(
        "not_found", "redirected", 302
    )
    leaky = classify(requests.exceptions.InvalidHeader("Authorization: token=abc"))
    assert leaky == TrackerFailure("request", "the request could not be sent (InvalidHeader)")
    assert classify(requests.exceptions.HTTPError("500")) is None
    assert classify(ValueError("token=abc")) is None
