"""`.dockerignore` matching with the Docker CLI's exact semantics.

The engine does not apply `.dockerignore` to a tar build context, so the console filters the context itself, and
must keep exactly what `docker build DIR` would send. This module reproduces, rule for rule, what Docker CLI 28
does (its vendored moby/patternmatcher v0.6 and moby/go-archive):

- `ignorefile.ReadAll`: an optional UTF-8 BOM; lines starting with `#` are comments (before trimming, so
  `  #x` is a pattern); Go `strings.TrimSpace`; a leading `!` marks an exception; `filepath.Clean`; one leading
  `/` dropped.
- `patternmatcher.New`: `!` alone is an error; each pattern's syntax is checked with Go's `filepath.Match`.
- `Pattern.compile`: the glob becomes a Go regexp (`*` -> `[^/]*`, `?` -> `[^/]`, `**` -> any number of
  folders), with fast paths for exact, prefix (`a/**`) and suffix (`**/a`) patterns whose quirks are kept
  (`**a` matches `ba`). Brackets and backslash escapes are handed to the regexp engine *as regexp syntax*,
  which differs from `filepath.Match`: `[!a]` means "`!` or `a`" (only `[^a]` negates) and `\\d` is a digit.
- `TarWithOptions`: the walk decides each path from its parent's per-pattern results
  (`MatchesUsingParentResults`), and does not enter an excluded folder unless the text of some exception pattern
  starts with `folder/` (so `!*/keep` does not rescue `a/keep` when `a` is excluded).
- Matching: Go's regexp is RE2, which runs in time linear in the path; Python's `re` backtracks, and a pattern
  such as `*a*a*a*a*a*a*a*a*a*ab` would take minutes on one long path. So the translated regexp is compiled by
  Google's RE2 (the `google-re2` package), as Go compiles it: no pattern costs more than a pass over the path.
- `TrimBuildFilesFromExcludes`: when the (deprecated, one-level) `Matches` says `.dockerignore` or the
  Dockerfile is excluded, the CLI appends `!.dockerignore` / `!<dockerfile>`; that `Matches` can disagree with
  the walk, in which case the Dockerfile is not sent at all and the build fails, as it does with the CLI.
- BuildKit's Dockerfile frontend (moby/buildkit frontend/dockerfile/builder, v0.8 in engine 20.10) reads
  `<Dockerfile>.dockerignore` next to the Dockerfile in place of `.dockerignore` when it exists; it reads the
  Dockerfile itself whatever the patterns say and re-includes nothing else (`for_build(dockerfile_specific=True)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import re2

__all__ = [
    "DockerIgnore",
    "DockerIgnoreError",
    "Pattern",
    "dropped_by_engine",
    "go_clean",
    "is_sent",
]

# Go's unicode.IsSpace set (strings.TrimSpace); Python's str.strip() would also strip \x1c-\x1f.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
_UTF8_BOM = "\ufeff"
# bufio.Scanner's default limit: a longer line makes ReadAll fail with "token too long".
_MAX_LINE_BYTES = 64 * 1024
# Linux's PATH_MAX. The CLI takes longer patterns, but no path it could match is longer, and matching costs
# time in proportion to the pattern's length times the path's: a longer pattern is refused.
MAX_PATTERN_BYTES = 4096
# Characters patternmatcher escapes before handing the pattern to the regexp engine (regexp specials that mean
# nothing to filepath.Match).
_REGEX_ESCAPED = set(".+()|{}$")
_EXACT, _PREFIX, _SUFFIX, _REGEXP = "exact", "prefix", "suffix", "regexp"
# RE2 refuses a program that needs more memory than this (its default, 8 MiB): a pattern that big is refused
# with a clear message rather than compiled.
_RE2_MAX_MEM = 8 << 20
# A path decoded with surrogateescape holds one lone surrogate per byte that is not UTF-8; Go's regexp reads each
# such byte as U+FFFD, and RE2 cannot be handed a lone surrogate at all.
_SURROGATES = re.compile("[\ud800-\udfff]")


class DockerIgnoreError(ValueError):
    """The `.dockerignore` holds a pattern the Docker CLI refuses (or cannot use); `line` says which."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


def go_clean(path: str) -> str:
    """Go's `path/filepath.Clean` on a '/'-separated path (posixpath.normpath differs on '//' and '')."""
    if path == "":
        return "."
    rooted = path[0] == "/"
    n = len(path)
    out: list[str] = []
    r = dotdot = 0
    if rooted:
        out.append("/")
        r = dotdot = 1
    while r < n:
        if path[r] == "/":
            r += 1
        elif path[r] == "." and (r + 1 == n or path[r + 1] == "/"):
            r += 1
        elif path[r] == "." and path[r + 1] == "." and (r + 2 == n or path[r + 2] == "/"):
            r += 2
            if len(out) > dotdot:
                w = len(out) - 1
                while w > dotdot and out[w] != "/":
                    w -= 1
                del out[w:]
            elif not rooted:
                if out:
                    out.append("/")
                out += [".", "."]
                dotdot = len(out)
        else:
            if (rooted and len(out) != 1) or (not rooted and len(out) != 0):
                out.append("/")
            while r < n and path[r] != "/":
                out.append(path[r])
                r += 1
    return "".join(out) or "."


# -- Go filepath.Match syntax check ------------------------------------------------------------------------------

def _scan_chunk(pattern: str) -> tuple[str, str]:
    """Go's scanChunk without the star flag: the next chunk (up to an unbracketed '*') and the rest."""
    pattern = pattern.lstrip("*")
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> str | None:
    """What is left of a bracket chunk after one (possibly escaped) character, or None on a syntax error."""
    if not chunk or chunk[0] in "-]":
        return None
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            return None
    rest = chunk[1:]
    return rest if rest else None


def _chunk_is_valid(chunk: str) -> bool:
    """Go's matchChunk error checks (it validates the whole chunk whatever the name)."""
    while chunk:
        ch = chunk[0]
        if ch == "[":
            chunk = chunk[1:]
            if chunk[:1] == "^":
                chunk = chunk[1:]
            ranges = 0
            while True:
                if chunk[:1] == "]" and ranges > 0:
                    chunk = chunk[1:]
                    break
                rest = _get_esc(chunk)
                if rest is None:
                    return False
                chunk = rest
                if chunk[0] == "-":
                    rest = _get_esc(chunk[1:])
                    if rest is None:
                        return False
                    chunk = rest
                ranges += 1
        elif ch == "\\":
            chunk = chunk[1:]
            if not chunk:
                return False
            chunk = chunk[1:]
        else:
            chunk = chunk[1:]
    return True


def _glob_syntax_ok(pattern: str) -> bool:
    rest = pattern
    while rest:
        chunk, rest = _scan_chunk(rest)
        if not _chunk_is_valid(chunk):
            return False
    return True


# -- Go regexp (RE2 syntax, Perl flags) to Python ----------------------------------------------------------------

_MAX_RUNE = 0x10FFFF
_Ranges = list[tuple[int, int]]


def _r(spec: str) -> _Ranges:
    """Ranges from a compact spec such as "09AZaz__" (pairs of bounds)."""
    return [(ord(spec[i]), ord(spec[i + 1])) for i in range(0, len(spec), 2)]


def _negate(ranges: _Ranges) -> _Ranges:
    out, low = [], 0
    for lo, hi in sorted(ranges):
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= _MAX_RUNE:
        out.append((low, _MAX_RUNE))
    return out


# Go regexp/syntax perl_groups.go: ASCII-only, and \s has no \v.
_PERL_CLASSES = {"d": _r("09"), "s": _r("\t\n\f\r  "), "w": _r("09AZaz__")}
_POSIX_CLASSES = {
    "alnum": _r("09AZaz"), "alpha": _r("AZaz"), "ascii": [(0, 0x7F)], "blank": _r("\t\t  "),
    "cntrl": [(0, 0x1F), (0x7F, 0x7F)], "digit": _r("09"), "graph": _r("!~"), "lower": _r("az"),
    "print": _r(" ~"), "punct": _r("!/:@[`{~"), "space": _r("\t\r  "), "upper": _r("AZ"),
    "word": _r("09AZaz__"), "xdigit": _r("09AFaf"),
}
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def _char(code: int) -> str:
    """One code point in RE2 syntax: an escape, so no character of the pattern is ever read as syntax."""
    return f"\\x{{{code:x}}}"


def _render_class(ranges: _Ranges, negated: bool = False) -> str:
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


class _Unsupported(Exception):
    """A regexp construct Go accepts but the console does not reproduce, or one Go itself rejects."""


def _escape(text: str, i: int, in_class: bool) -> tuple[_Ranges | str, int]:
    """Parse the Go regexp escape at text[i] == '\\'; returns ranges (or an RE2 assertion) and the next index."""
    if i + 1 >= len(text):
        raise _Unsupported("a trailing backslash")
    c = text[i + 1]
    if ord(c) < 0x80 and not c.isalnum():
        return [(ord(c), ord(c))], i + 2
    if c.lower() in _PERL_CLASSES:
        ranges = _PERL_CLASSES[c.lower()]
        return (_negate(ranges) if c.isupper() else ranges), i + 2
    if c in _SIMPLE_ESCAPES:
        code = _SIMPLE_ESCAPES[c]
        return [(code, code)], i + 2
    if not in_class and c in "AzbB":
        return {"A": r"\A", "z": r"\z", "b": r"\b", "B": r"\B"}[c], i + 2
    raise _Unsupported(f"the escape \\{c}")


def _class(text: str, i: int) -> tuple[str, int]:
    """Parse the Go character class starting at text[i] == '['; returns an RE2 class and the next index."""
    i += 1
    negated = text[i:i + 1] == "^"
    if negated:
        i += 1
    ranges: _Ranges = []
    first = True
    while first or text[i:i + 1] != "]":
        first = False
        if i >= len(text):
            raise _Unsupported("a missing closing ]")
        if text.startswith("[:", i):
            end = text.find(":]", i + 2)
            if end >= 0:
                name = text[i + 2:end]
                negative = name.startswith("^")
                group = _POSIX_CLASSES.get(name.lstrip("^"))
                if group is None:
                    raise _Unsupported(f"the class [:{name}:]")
                ranges += _negate(group) if negative else group
                i = end + 2
                continue
        if text[i] == "\\" and text[i + 1:i + 2] in ("p", "P"):
            raise _Unsupported("a Unicode class")
        if text[i] == "\\":
            item, i = _escape(text, i, in_class=True)
            assert not isinstance(item, str)
            if len(item) != 1 or item[0][0] != item[0][1]:
                # A Perl class such as \d inside brackets: never the start of a range.
                ranges += item
                continue
            lo = item[0][0]
        else:
            lo = ord(text[i])
            i += 1
        hi = lo
        if text[i:i + 1] == "-" and i + 1 < len(text) and text[i + 1] != "]":
            i += 1
            if text[i] == "\\":
                item, i = _escape(text, i, in_class=True)
                assert not isinstance(item, str)
                if len(item) != 1 or item[0][0] != item[0][1]:
                    raise _Unsupported("a class used as a range bound")
                hi = item[0][0]
            else:
                hi = ord(text[i])
                i += 1
            if hi < lo:
                raise _Unsupported("an inverted character range")
        ranges.append((lo, hi))
    return _render_class(ranges, negated), i + 1


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    # A refused pattern is reported to the user; RE2 would also print it to the web process's stderr.
    options.log_errors = False
    return options


_OPTIONS = _re2_options()


def _go_regexp_to_re2(text: str) -> re2._Regexp:
    """Translate the regexp string patternmatcher builds (Go RE2, Perl flags) into RE2's own syntax.

    Go's regexp is RE2 with a few syntax differences; the translation keeps only what both read the same way
    (every literal written as an escape) and refuses the rest, so what matches here matches in the CLI.
    """
    if _SURROGATES.search(text):
        raise _Unsupported("bytes that are not UTF-8")
    out: list[str] = []
    i = 0
    last = len(text) - 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            item, i = _escape(text, i, in_class=False)
            out.append(item if isinstance(item, str) else _render_class(item))
            continue
        if ch == "[":
            rendered, i = _class(text, i)
            out.append(rendered)
            continue
        if ch == "(":
            out.append("(?:")
        elif ch == "$" and i == last:
            out.append(r"\z")
        elif ch in ")*?.^":
            # Generated by patternmatcher (groups, `.*`, quantifiers) or a bare `^` from the pattern: same
            # meaning in both engines without the multi-line flag.
            out.append(ch)
        else:
            out.append(_char(ord(ch)))
        i += 1
    try:
        return re2.compile("".join(out), _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise _Unsupported(f"a regexp RE2 refuses ({detail})") from exc


def _compile(glob: str) -> tuple[str, re2._Regexp | None]:
    """patternmatcher's Pattern.compile: the match kind and, for regexp patterns, the compiled expression."""
    reg = "^"
    kind = _EXACT
    i = 0
    n = len(glob)
    index = 0
    while i < n:
        ch = glob[i]
        i += 1
        if ch == "*":
            if i < n and glob[i] == "*":
                i += 1
                # Treat "**/" as "**".
                if i < n and glob[i] == "/":
                    i += 1
                if i >= n:
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        reg += ".*"
                        kind = _REGEXP
                else:
                    reg += "(.*/)?"
                    kind = _REGEXP
                if index == 0:
                    kind = _SUFFIX
            else:
                reg += "[^/]*"
                kind = _REGEXP
        elif ch == "?":
            reg += "[^/]"
            kind = _REGEXP
        elif ch in _REGEX_ESCAPED:
            reg += "\\" + ch
        elif ch == "\\":
            if i < n:
                reg += "\\" + glob[i]
                i += 1
                kind = _REGEXP
            else:
                reg += "\\"
        elif ch in "[]":
            reg += ch
            kind = _REGEXP
        else:
            reg += ch
        index += 1
    if kind != _REGEXP:
        return kind, None
    return kind, _go_regexp_to_re2(reg + "$")


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern of a `.dockerignore`.

    `text` is the pattern as the CLI keeps it (cleaned, `!` included for an exception), `glob` the same without
    the `!`, `line` its line in the file (0 for patterns the CLI adds itself, such as `!Dockerfile`).
    """

    text: str
    exclusion: bool
    line: int
    glob: str = field(repr=False)
    _kind: str = field(repr=False, compare=False)
    _regexp: re2._Regexp | None = field(repr=False, compare=False)
    _dirs: int = field(repr=False, compare=False)

    @classmethod
    def build(cls, text: str, line: int) -> Pattern:
        """patternmatcher.New for one pattern; raises DockerIgnoreError as the CLI would refuse it."""
        text = go_clean(text.strip(_GO_SPACE))
        exclusion = text.startswith("!")
        if exclusion and len(text) == 1:
            raise DockerIgnoreError('illegal exclusion pattern: "!"', line)
        glob = text[1:] if exclusion else text
        length = len(glob.encode("utf-8", "surrogateescape"))
        if length > MAX_PATTERN_BYTES:
            raise DockerIgnoreError(f"the pattern is {length:,} bytes long; at most {MAX_PATTERN_BYTES:,} are "
                                    "allowed (no path is longer)", line)
        if not _glob_syntax_ok(glob):
            raise DockerIgnoreError(f"syntax error in pattern `{glob}`", line)
        try:
            kind, regexp = _compile(glob)
        except _Unsupported as exc:
            # The CLI accepts these at parse time, then its regexp compilation fails while walking and the
            # context goes out truncated without an error: refusing is the honest answer.
            raise DockerIgnoreError(
                f"pattern `{glob}` uses {exc}, which Docker cannot apply (its regexp translation fails)", line
            ) from exc
        return cls(text, exclusion, line, glob, kind, regexp, glob.count("/") + 1)

    def __str__(self) -> str:
        return self.text

    def matches(self, path: str) -> bool:
        """Whether this pattern matches `path` itself (no parent folders considered)."""
        if self._kind == _EXACT:
            return path == self.glob
        if self._kind == _PREFIX:
            return path.startswith(self.glob[:-2])
        if self._kind == _SUFFIX:
            suffix = self.glob[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self._regexp is not None
        if not path.isascii():
            path = _SURROGATES.sub("\ufffd", path)
        return self._regexp.search(path) is not None


@dataclass(frozen=True)
class _Decision:
    """The walk's verdict on one path: per-pattern results handed to children, and why."""

    parent_matched: tuple[bool, ...]
    excluded: bool
    # The folder is not entered at all (the walk's SkipDir); also true when an ancestor was skipped.
    pruned: bool
    deciding: Pattern | None


class DockerIgnore:
    """The patterns of one `.dockerignore` and the CLI's decision for each path of the context."""

    def __init__(self, patterns: list[Pattern], sent_always: frozenset[str] = frozenset()) -> None:
        self._patterns = list(patterns)
        # Clean paths sent whatever the patterns say (the Dockerfile of a BuildKit build).
        self._sent_always = sent_always
        self._has_exceptions = any(p.exclusion for p in self._patterns)
        self._decisions: dict[str, _Decision] = {}
        self._trimmed: dict[str, DockerIgnore] = {}

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        """Read a `.dockerignore` as `ignorefile.ReadAll` + `patternmatcher.New` do."""
        patterns = []
        text = text.removeprefix(_UTF8_BOM)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            line = raw.removesuffix("\r")
            if len(line.encode("utf-8", "surrogateescape")) > _MAX_LINE_BYTES:
                raise DockerIgnoreError("the line is too long (Docker reads at most 64 KiB per line)", number)
            if line.startswith("#"):
                continue
            pattern = line.strip(_GO_SPACE)
            if not pattern:
                continue
            invert = pattern[0] == "!"
            if invert:
                pattern = pattern[1:].strip(_GO_SPACE)
            if pattern:
                pattern = go_clean(pattern)
                if len(pattern) > 1 and pattern[0] == "/":
                    pattern = pattern[1:]
            patterns.append(Pattern.build(("!" if invert else "") + pattern, number))
        return cls(patterns)

    @property
    def patterns(self) -> list[Pattern]:
        return list(self._patterns)

    def __repr__(self) -> str:
        return f"<DockerIgnore {[p.text for p in self._patterns]}>"

    # -- the walk (go-archive TarWithOptions + MatchesUsingParentResults) -------------------------------------

    def _decide(self, path: str) -> _Decision:
        known = self._decisions.get(path)
        if known is not None:
            return known
        # Decide the unknown folders above first, outermost first: a loop, not recursion, since a path may have
        # thousands of components.
        pending = [path]
        parent = path.rpartition("/")[0]
        while parent and parent not in self._decisions:
            pending.append(parent)
            parent = parent.rpartition("/")[0]
        for unknown in reversed(pending):
            known = self._decide_below(unknown, self._decisions.get(unknown.rpartition("/")[0]))
        return known

    def _decide_below(self, path: str, inherited: _Decision | None) -> _Decision:
        """`path`'s decision given its parent's (None at the top level)."""
        matched = False
        deciding = None
        results = []
        for index, pattern in enumerate(self._patterns):
            match = inherited.parent_matched[index] if inherited else False
            if not match:
                # Skip an inclusion when already excluded and an exception when not excluded; the skipped
                # pattern's result for this path stays False for the children (the CLI's own quirk).
                if pattern.exclusion != matched:
                    results.append(False)
                    continue
                match = pattern.matches(path)
            results.append(match)
            if match:
                matched = not pattern.exclusion
                deciding = pattern
        pruned = bool(inherited and inherited.pruned)
        if pruned:
            deciding = inherited.deciding if inherited else deciding
        elif matched and not self._could_rescue(path):
            pruned = True
        decision = _Decision(tuple(results), matched, pruned, deciding)
        self._decisions[path] = decision
        return decision

    def _could_rescue(self, folder: str) -> bool:
        """Whether the walk enters an excluded folder: only if some exception's text starts with `folder/`."""
        if not self._has_exceptions:
            return False
        prefix = folder + "/"
        return any(p.exclusion and (p.glob + "/").startswith(prefix) for p in self._patterns)

    def _verdict(self, path: str) -> _Decision | None:
        path = _normalise(path)
        if path == ".":
            return None
        parent = path.rpartition("/")[0]
        if parent and self._decide(parent).pruned:
            return self._decide(parent)
        return self._decide(path)

    def excludes(self, path: str) -> bool:
        """Whether the `.dockerignore` keeps `path` (a file or a folder) out of the context the CLI sends.

        A folder that is excluded but may hold an exception is left out itself (its files may still be sent);
        a path below a folder the walk does not enter is excluded whatever later patterns say.
        """
        if self._sent_always and _normalise(path) in self._sent_always:
            return False
        verdict = self._verdict(path)
        return bool(verdict and (verdict.excluded or verdict.pruned))

    def skips_folder(self, folder: str) -> bool:
        """Whether the walk never enters `folder`: everything below it is excluded, whatever its name.

        Lets a caller that reads a tree in order pass over a whole excluded folder (node_modules, say) without
        asking about each path inside.
        """
        if self._sent_always:
            prefix = _normalise(folder) + "/"
            if any(path.startswith(prefix) for path in self._sent_always):
                return False
        verdict = self._verdict(folder)
        return bool(verdict and verdict.pruned)

    def deciding_pattern(self, path: str) -> Pattern | None:
        """The pattern that decided `path`'s fate (for an excluded path, the one that excluded it or the folder
        the walk skipped), or None when no pattern matched."""
        if self._sent_always and _normalise(path) in self._sent_always:
            return None
        verdict = self._verdict(path)
        return verdict.deciding if verdict else None

    # -- the Docker CLI's legacy check, used for the build files --------------------------------------------

    def legacy_matches(self, path: str) -> bool:
        """patternmatcher.Matches (deprecated): checks only the parent folder as deep as each pattern.

        The CLI uses it to decide whether to re-include the Dockerfile and `.dockerignore`; the engine uses it
        to decide whether to hide them from COPY.
        """
        path = go_clean(path)
        if path == ".":
            return False
        parent = path.rpartition("/")[0] or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self._patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.matches(path)
            if not match and parent != "." and pattern._dirs <= len(parent_dirs):
                match = pattern.matches("/".join(parent_dirs[: pattern._dirs]))
            if match:
                matched = not pattern.exclusion
        return matched

    def for_build(self, dockerfile: str = "Dockerfile", *, dockerfile_specific: bool = False) -> DockerIgnore:
        """These patterns plus the exceptions the CLI appends for `.dockerignore` and the Dockerfile.

        `dockerfile_specific`: the patterns come from `<dockerfile>.dockerignore`, which BuildKit's Dockerfile
        frontend reads instead of `.dockerignore`. It gets the Dockerfile whatever the patterns say (from its own
        transfer), so the Dockerfile is always sent; `.dockerignore` and the specific file itself are ordinary
        files of the context, sent only when the patterns keep them.
        """
        dockerfile = _normalise(dockerfile)
        key = ("\0" if dockerfile_specific else "") + dockerfile
        trimmed = self._trimmed.get(key)
        if trimmed is None:
            patterns = list(self._patterns)
            if dockerfile_specific:
                # The path itself, not a pattern (a name such as `a[1].Dockerfile` is no glob to BuildKit).
                trimmed = self._trimmed[key] = DockerIgnore(patterns, sent_always=frozenset({dockerfile}))
                return trimmed
            if self.legacy_matches(".dockerignore"):
                patterns.append(Pattern.build("!.dockerignore", 0))
            with_ignore = DockerIgnore(patterns)
            if with_ignore.legacy_matches(dockerfile):
                patterns.append(Pattern.build("!" + dockerfile, 0))
            trimmed = self._trimmed[key] = DockerIgnore(patterns)
        return trimmed


def _is_clean(path: str) -> bool:
    """No empty, `.` or `..` component: what go_clean would return unchanged (cheap string checks)."""
    return bool(path) and not (
        "//" in path or "/./" in path or "/../" in path
        or path.startswith(("./", "../")) or path.endswith(("/", "/.", "/..")) or path in (".", "..")
    )


def _normalise(path: str) -> str:
    """A context path as the walk sees it: relative, '/'-separated, clean."""
    if path.startswith("/"):
        raise ValueError(f"{path!r} is not relative to the context root")
    # Paths from a stored source are clean already; go_clean is the slow part of filtering a big context.
    if _is_clean(path):
        return path
    path = go_clean(path)
    if path == ".." or path.startswith("../"):
        raise ValueError(f"{path!r} leaves the context root")
    return path


def is_sent(path: str, ignore: DockerIgnore, dockerfile: str = "Dockerfile", *,
            dockerfile_specific: bool = False) -> bool:
    """Whether `docker build` puts `path` (a file or a folder) into the context it sends.

    `dockerfile` is the Dockerfile's path relative to the context root. The CLI re-includes the Dockerfile and
    `.dockerignore` when its (one-level) check says they are excluded; when that check misses, as with
    `**/sub` and `-f a/sub/Dockerfile`, the Dockerfile is not sent and the build fails, here as with the CLI.
    With `dockerfile_specific` (the patterns of `<dockerfile>.dockerignore`, BuildKit) the Dockerfile is always
    sent and nothing else is re-included.
    """
    return not ignore.for_build(dockerfile, dockerfile_specific=dockerfile_specific).excludes(path)


def dropped_by_engine(ignore: DockerIgnore, dockerfile: str = "Dockerfile") -> set[str]:
    """The build files the engine hides from COPY: `.dockerignore` and the Dockerfile when the `.dockerignore`
    excludes them (by the engine's own one-level check)."""
    return {name for name in (".dockerignore", _normalise(dockerfile)) if ignore.legacy_matches(name)}
