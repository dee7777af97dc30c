"""Test helpers for hosts and plugin authors: fake trackers, fixtures and contract tests.

Nothing here is imported by the runtime library; it exists so that a host can unit-test its
integration and a plugin author can prove their tracker type against the same fakes we use.
"""
