"""The test suite's own rules: live tests carry the integration marker; CI never skips a missing extra."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A scratch suite with this repository's root conftest and its PostgreSQL helper."""
    pytester.makeini("[pytest]\nmarkers = integration: needs real services\nfilterwarnings = error\n")
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(pg_helpers=(TESTS / "pg_helpers.py").read_text())
    pytester.makepyfile(
        test_sample="""
        import pytest

        def test_needs_a_missing_extra():
            pytest.importorskip("surely_not_an_installed_module")

        def test_skips_for_another_reason():
            pytest.skip("not today")

        @pytest.fixture
        def pg_uri():  # stands in for the real one: only the marker is under test here
            return "postgresql://unused"

        def test_marked(pg_uri):
            pass
        """
    )
    return pytester


def test_a_missing_extra_fails_under_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    result = suite.runpytest("-p", "no:cacheprovider", "-m", "not integration", "-k", "skips or extra")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*under CI every extra of .?dev? must be installed*"])


def test_a_missing_extra_skips_outside_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest("-p", "no:cacheprovider", "-k", "skips or extra").assert_outcomes(skipped=2)


def test_tests_using_postgres_or_live_servers_are_integration(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "no:cacheprovider", "-m", "integration", "-k", "marked")
    result.assert_outcomes(passed=1)
    hermetic = suite.runpytest("-p", "no:cacheprovider", "-m", "not integration", "-k", "marked")
    hermetic.assert_outcomes(deselected=3)
