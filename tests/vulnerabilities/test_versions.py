"""Each ecosystem's version order, on the cases each one is known to get wrong when compared naively."""

from __future__ import annotations

import pytest

from builds.vulnerabilities.versions import APK, DPKG, PEP440, SEMVER, BadVersion, apk_compare, apk_valid, compare


def ordered(order: str, versions: list[str]) -> None:
    """Every pair of `versions` compares as their positions do (each one equal to itself)."""
    for i, a in enumerate(versions):
        for j, b in enumerate(versions):
            expected = (i > j) - (i < j)
            assert compare(order, a, b) == expected, f"{a} vs {b} in {order}"


def test_it_orders_dpkg_epochs_tildes_and_revisions():
    ordered(DPKG, ["1.0~~", "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0-2", "1.0a", "1.0+dfsg-1",
                   "1.1", "1.10", "2:0.1", "2:0.1-1"])


def test_it_finds_dpkg_equal_spellings_equal():
    assert compare(DPKG, "0:1.2-3", "1.2-3") == 0
    assert compare(DPKG, "1.2-0", "1.2") == 0


def test_it_refuses_what_dpkg_cannot_read():
    with pytest.raises(BadVersion):
        compare(DPKG, "not a version", "1.0")


def test_it_orders_pep440_pre_post_dev_and_local():
    ordered(PEP440, ["1.0.dev1", "1.0a1", "1.0a2.dev1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0+local.1",
                     "1.0.post1.dev1", "1.0.post1", "1.1", "1!0.1"])


def test_it_normalises_pep440_spellings():
    assert compare(PEP440, "1.0-RC1", "1.0rc1") == 0
    assert compare(PEP440, "1.0.0", "1.0") == 0
    assert compare(PEP440, "v2.0", "2.0") == 0


def test_it_refuses_what_pep440_cannot_read():
    with pytest.raises(BadVersion):
        compare(PEP440, "2.0-banana-split", "1.0")


def test_it_orders_semver_prereleases():
    # The order of the SemVer 2.0 specification's own example, then numbers that compare as numbers.
    ordered(SEMVER, ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                     "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "10.0.0"])


def test_it_ignores_semver_build_metadata_and_npm_prefixes():
    assert compare(SEMVER, "1.0.0+build.5", "1.0.0") == 0
    assert compare(SEMVER, "v1.2.3", "1.2.3") == 0
    assert compare(SEMVER, "=1.2.3", "1.2.3") == 0


def test_it_refuses_what_semver_cannot_read():
    with pytest.raises(BadVersion):
        compare(SEMVER, "1.2", "1.2.0")


def test_it_orders_apk_suffixes_letters_and_revisions():
    ordered(APK, ["1.2_alpha", "1.2_alpha1", "1.2_beta2", "1.2_pre1", "1.2_rc1", "1.2_rc2", "1.2", "1.2-r1",
                  "1.2-r10", "1.2_cvs1", "1.2_git20240101", "1.2_hg1", "1.2_p1", "1.2_p2", "1.2a", "1.2b",
                  "1.2.1", "1.3", "1.10"])


def test_it_compares_apk_leading_zeros_as_text():
    # As apk (after Gentoo): a digit group after the first with a leading zero is compared as text.
    assert apk_compare("1.01", "1.1") == -1
    assert apk_compare("1.001", "1.01") == -1
    assert apk_compare("1.010", "1.09") == -1
    # The first group is always a number.
    assert apk_compare("01.2", "1.2") == 0


def test_it_orders_apk_revisions_numerically():
    assert apk_compare("3.0.8-r0", "3.0.8-r10") == -1
    assert apk_compare("1.36.1-r2", "1.36.1-r15") == -1
    assert apk_compare("2.4-r9", "2.4.1-r0") == -1


def test_it_orders_apk_commit_hashes_after_suffixes():
    assert apk_compare("1.2_git20240101~abc", "1.2_git20240101") == 1
    assert apk_compare("1.2~abc-r1", "1.2~abc") == 1


def test_it_tells_valid_apk_versions():
    for good in ["1", "1.2.3", "1.2a", "1.2_rc1", "1.2_p1_rc2", "1.2~a3f9-r3", "0.9_git20240101-r0"]:
        assert apk_valid(good), good
    for bad in ["", "a1", "1.2-3", "1.2ab", "1.2_foo", "1.2.", "1.2-r", "1.2 "]:
        assert not apk_valid(bad), bad


def test_it_sorts_a_broken_apk_version_below_where_it_breaks():
    assert apk_compare("1.2_foo", "1.2") == -1
    with pytest.raises(BadVersion):
        apk_compare("latest", "1.2")


def test_it_refuses_overlong_versions_in_every_order():
    for order in (DPKG, APK, PEP440, SEMVER):
        with pytest.raises(BadVersion):
            compare(order, "1" * 300, "1")
