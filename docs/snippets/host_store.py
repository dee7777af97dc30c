"""Host guide: choosing a store and configuring keys."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def embedded(data_dir: Path, plugins: object = None) -> None:
    # [start sqlite]
    from tokenproviders import Resolver
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    # Once, at installation: a key file only its owner can read (mode 0600). Back it up
    # separately from the database; without it no stored token can ever be opened again.
    key_file = data_dir / "keys.json"
    if not key_file.exists():
        KeyRing.generate_key_file(key_file)

    # At start-up: the key ring from a tokenproviders_keys plugin (KMS, Vault), else the
    # TOKENPROVIDERS_KEYS variable, else this key file (key_file= would win over both).
    keyring = KeyRing.load(default_key_file=key_file)
    db = SQLiteDatabase(data_dir / "tokens.db", keyring)
    resolver = Resolver(directory=db.directory, store=db.tokens)
    resolver.plugins.register(db.audit.observer())  # every resolution into the audit trail
    # [end sqlite]
    del resolver
    db.close()


def host_owned(directory: object, tokens_db: Path) -> object:
    # [start own-directory]
    from tokenproviders import Resolver
    from tokenproviders.crypto import KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    # Your own Directory, tokens in the embedded store: its file holds only the token table
    # you write to (the directory and audit tables stay empty unless you use them).
    db = SQLiteDatabase(tokens_db, KeyRing.load())  # keys from the plugin hook or environment
    resolver = Resolver(directory=directory, store=db.tokens)
    # [end own-directory]
    return resolver


def check() -> None:
    from _check import memory_plugins

    from tokenproviders import ALL_TENANTS, Credentials, MemoryTokenStore, Resolver, Secret, Tracker
    from tokenproviders.crypto import KEYS_ENV, KeyRing
    from tokenproviders.stores.sqlite import SQLiteDatabase

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        embedded(data_dir)
        key_file = data_dir / "keys.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        # The same database opens again with the same key file, and keeps what it stored.
        plugins, _ = memory_plugins("jira")
        with SQLiteDatabase(data_dir / "tokens.db", KeyRing.load(key_file=key_file)) as db:
            jira = Tracker(tenant="acme", id="jira", type="jira", base_url="https://acme.atlassian.example")
            db.directory.add_member("alice", "acme")
            db.directory.add_tracker(jira)
            resolver = Resolver(directory=db.directory, store=db.tokens, plugins=plugins)
            resolver.plugins.register(db.audit.observer())
            resolver.tokens.set(owner="alice", url=jira.base_url, scope=ALL_TENANTS,
                                credentials=Credentials(api_password=Secret("alice-token")))
            assert resolver.resolve("alice", jira).source == "personal"
            assert db.audit.query(user="alice")[0].source == "personal"
        raw = (data_dir / "tokens.db").read_bytes()
        assert b"alice-token" not in raw

        # The environment-variable key source, in its short form ``id:base64key``.
        ring = KeyRing.generate("k1")
        env = {KEYS_ENV: ",".join(
            f"{key['id']}:{key['key']}" for key in ring.to_document()["keys"])}
        assert KeyRing.load(env=env).primary_id == "k1"

        # A host's own directory with the embedded token store; keys from the environment.
        os.environ[KEYS_ENV] = env[KEYS_ENV]
        try:
            from tokenproviders import MemoryDirectory

            other = host_owned(MemoryDirectory(), data_dir / "host-tokens.db")
            assert other.store.__class__.__name__ == "SQLiteTokenStore"
        finally:
            del os.environ[KEYS_ENV]

    # The memory store seals with a key ring too, when given one.
    store = MemoryTokenStore(keyring=KeyRing.generate())
    assert len(store) == 0


if __name__ == "__main__":
    check()
    print("host_store: ok")
