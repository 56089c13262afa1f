"""Each ecosystem's own version order, as OSV's ranges need it: dpkg (Debian), apk (Alpine), PEP 440 (PyPI) and
Semantic Versioning 2.0 (npm, and every range of type SEMVER).

`compare(order, a, b)` answers -1, 0 or 1 and raises `BadVersion` for a string that order cannot read; the range
evaluation (builds/vulnerabilities/ranges.py) then leaves that range out rather than guess.

- dpkg: python-debian's `version_compare` (epochs, `~` before anything, the Debian revision).
- PEP 440: `packaging.version.Version` (pre, post, dev and local releases; normalised spellings).
- semver: the `semver` package's precedence (pre-releases below their release, numeric identifiers numerically,
  build metadata ignored); a leading `v` or `=` (as npm accepts them) is dropped first.
- apk: written here from apk-tools' documented grammar `digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}` and its
  comparison rules (no maintained Python library implements it), see `apk_compare`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import semver
from debian.debian_support import version_compare as dpkg_version_compare
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

DPKG = "dpkg"
APK = "apk"
PEP440 = "pep440"
SEMVER = "semver"
ORDERS = (DPKG, APK, PEP440, SEMVER)
# Longer strings are no version any of these orders writes: refused before any parsing.
MAX_VERSION_LENGTH = 255


class BadVersion(ValueError):
    """A string that the order cannot read as a version."""


def compare(order: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b` in `order`; BadVersion when either is no version there."""
    if order == DPKG:
        return _dpkg(a, b)
    if order == APK:
        return apk_compare(a, b)
    if order == PEP440:
        return _sign(_pep440(a), _pep440(b))
    if order == SEMVER:
        return _semver(a).compare(_semver(b))
    raise ValueError(f"no version order {order!r}")


def _sign(a, b) -> int:
    return (a > b) - (a < b)


def _check(version: str) -> str:
    if not isinstance(version, str) or not version or len(version) > MAX_VERSION_LENGTH:
        raise BadVersion(f"{version!r} is not a version")
    return version


def _dpkg(a: str, b: str) -> int:
    try:
        result = dpkg_version_compare(_check(a), _check(b))
    except ValueError as exc:
        raise BadVersion(str(exc)) from None
    return (result > 0) - (result < 0)


@lru_cache(maxsize=4096)
def _pep440(version: str) -> Pep440Version:
    try:
        return Pep440Version(_check(version))
    except InvalidVersion as exc:
        raise BadVersion(str(exc)) from None


@lru_cache(maxsize=4096)
def _semver(version: str) -> semver.Version:
    text = _check(version).strip()
    if text[:1] in ("v", "="):
        text = text[1:]
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError) as exc:
        raise BadVersion(f"{version!r} is not a semantic version: {exc}") from None


# -- apk --------------------------------------------------------------------------------------------------------
# apk-tools' version grammar: digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}. A version is read as a sequence of
# tokens; two versions are compared token by token while both have a token of the same kind, then by which kind
# comes next (see apk_compare). Kinds, in the order apk numbers them (a later kind sorts lower where one version
# ends and the other goes on).
_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _COMMIT_HASH, _REVISION_NO, _END, _INVALID = range(9)
# Suffixes in their order; the pre-releases (alpha to rc) sort below the version without a suffix, the others above.
_SUFFIXES = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_NO_SUFFIX = 4
_DIGITS = re.compile(r"[0-9]*")
_LOWER = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-fA-F]*")


def _apk_tokens(version: str) -> list[tuple[int, object]]:
    """The version's tokens as (kind, value); the last is (_END, None) or, where the grammar breaks, (_INVALID,
    None). Values: numbers for digits, suffix numbers and the revision (with the digits' text where a leading zero
    makes apk compare them as text), the letter, the suffix's rank, the hash's text."""
    tokens: list[tuple[int, object]] = []
    digits = _DIGITS.match(version).group()
    if not digits:
        return [(_INVALID, None)]
    tokens.append((_INITIAL_DIGIT, int(digits)))
    kind, at = _INITIAL_DIGIT, len(digits)
    while True:
        if at >= len(version):
            tokens.append((_END, None))
            return tokens
        char = version[at]
        if "a" <= char <= "z":
            if kind > _DIGIT:
                break
            kind, at = _LETTER, at + 1
            tokens.append((kind, char))
        elif char == "." or char.isdigit() and char.isascii():
            if char == ".":
                if kind > _DIGIT:
                    break
                at += 1
            if kind in (_INITIAL_DIGIT, _DIGIT):
                kind = _DIGIT
            elif kind == _SUFFIX:
                kind = _SUFFIX_NO
            else:
                break
            digits = _DIGITS.match(version, at).group()
            if not digits:
                break
            at += len(digits)
            # A DIGIT with a leading zero compares as text (apk follows Gentoo there): keep both.
            tokens.append((kind, (int(digits), digits)))
        elif char == "_":
            if kind > _SUFFIX_NO:
                break
            name = _LOWER.match(version, at + 1).group()
            if name not in _SUFFIXES:
                break
            kind, at = _SUFFIX, at + 1 + len(name)
            tokens.append((kind, _SUFFIXES[name]))
        elif char == "~":
            if kind >= _COMMIT_HASH:
                break
            value = _HEX.match(version, at + 1).group()
            if not value:
                break
            kind, at = _COMMIT_HASH, at + 1 + len(value)
            tokens.append((kind, value))
        elif char == "-":
            if kind >= _REVISION_NO or not version.startswith("-r", at):
                break
            digits = _DIGITS.match(version, at + 2).group()
            if not digits:
                break
            kind, at = _REVISION_NO, at + 2 + len(digits)
            tokens.append((kind, (int(digits), digits)))
        else:
            break
    tokens.append((_INVALID, None))
    return tokens


def apk_valid(version: str) -> bool:
    """Whether apk reads `version` as a whole (its `apk version --check`)."""
    return isinstance(version, str) and 0 < len(version) <= MAX_VERSION_LENGTH and \
        _apk_tokens(version)[-1][0] == _END


def _apk_token_cmp(kind: int, a, b) -> int:
    if kind == _DIGIT:
        (number_a, text_a), (number_b, text_b) = a, b
        if text_a.startswith("0") or text_b.startswith("0"):
            return _sign(text_a, text_b)
        return _sign(number_a, number_b)
    if kind in (_SUFFIX_NO, _REVISION_NO):
        return _sign(a[0], b[0])
    return _sign(a, b)


def apk_compare(a: str, b: str) -> int:
    """apk's order of two versions: -1, 0 or 1.

    Tokens are compared pairwise while both versions have one of the same kind: numbers numerically (a digit
    group after the first with a leading zero as text), letters and hashes as text, suffixes by rank (alpha < beta <
    pre < rc < none < cvs < svn < git < hg < p). Where the kinds part, a version going on with a pre-release suffix
    is the lower; otherwise the one whose next kind is later in the grammar is (so 1.2 < 1.2.1 < 1.2.1a, 1.2_rc1 <
    1.2 < 1.2_p1, 1.2 < 1.2-r1). Any text apk's grammar does not allow makes the version sort below where it breaks;
    a string with no leading digit is BadVersion."""
    tokens_a, tokens_b = _apk_tokens(_check(a)), _apk_tokens(_check(b))
    if tokens_a[0][0] == _INVALID or tokens_b[0][0] == _INVALID:
        raise BadVersion(f"{a if tokens_a[0][0] == _INVALID else b!r} is not an apk version")
    for (kind_a, value_a), (kind_b, value_b) in zip(tokens_a, tokens_b, strict=False):
        if kind_a != kind_b or kind_a >= _END:
            break
        result = _apk_token_cmp(kind_a, value_a, value_b)
        if result:
            return result
    if kind_a == kind_b:
        return 0
    if kind_a == _SUFFIX and value_a < _NO_SUFFIX:
        return -1
    if kind_b == _SUFFIX and value_b < _NO_SUFFIX:
        return 1
    return -1 if kind_a > kind_b else 1
