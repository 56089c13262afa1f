"""The `.dockerignore` matcher on its own (no engine): each rule of the Docker CLI's semantics."""

from __future__ import annotations

import pytest

from builds.sources.dockerignore import DockerIgnore, DockerIgnoreError, dropped_by_engine, go_clean, is_sent


def excluded(text: str, *paths: str) -> dict[str, bool]:
    ignore = DockerIgnore.parse(text)
    return {path: ignore.excludes(path) for path in paths}


def test_it_reads_comments_blank_lines_and_whitespace():
    ignore = DockerIgnore.parse("\ufeff# a comment\n\n   \n  a.txt  \r\n\t#not-a-comment\n")
    assert [(p.text, p.line) for p in ignore.patterns] == [("a.txt", 4), ("#not-a-comment", 5)]
    assert ignore.excludes("a.txt")
    assert ignore.excludes("#not-a-comment")
    assert not ignore.excludes("# a comment")


def test_it_keeps_exceptions_with_their_bang_and_line():
    ignore = DockerIgnore.parse("*.md\n! README.md\n")
    exception = ignore.patterns[1]
    assert (exception.text, exception.glob, exception.exclusion, exception.line) == ("!README.md", "README.md", True, 2)
    assert str(exception) == "!README.md"


@pytest.mark.parametrize(
    ("written", "cleaned"),
    [("/build", "build"), ("build/", "build"), ("./build", "build"), ("a//b", "a/b"), ("a/./b", "a/b"),
     ("a/../b", "b"), ("!/a/../c/", "!c"), ("/", "/"), ("../x", "../x")],
)
def test_it_cleans_patterns_like_filepath_clean(written, cleaned):
    assert DockerIgnore.parse(written).patterns[0].text == cleaned


def test_it_matches_a_cleaned_pattern_by_its_clean_form():
    assert excluded("/build/\n./dist\nx//y\n", "build", "dist/app.js", "x/y") == {
        "build": True, "dist/app.js": True, "x/y": True,
    }


def test_it_ports_go_filepath_clean():
    assert [go_clean(p) for p in ["", "//a//b/", "/../a", "a/b/../../..", "./", "a/./b/."]] == [
        ".", "/a/b", "/a", "..", ".", "a/b",
    ]


def test_it_matches_star_and_question_mark_within_one_folder():
    assert excluded("*.log\nfile?.txt\n", "a.log", "d/a.log", "file1.txt", "file10.txt", "file/.txt") == {
        "a.log": True, "d/a.log": False, "file1.txt": True, "file10.txt": False, "file/.txt": False,
    }


def test_it_matches_character_classes_with_regexp_meaning():
    # patternmatcher hands brackets to Go's regexp: `^` negates, `!` is a plain member.
    assert excluded("[a-c]1\n[^a]2\n[!a]3\n", "b1", "d1", "b2", "a2", "a3", "!3", "b3") == {
        "b1": True, "d1": False, "b2": True, "a2": False, "a3": True, "!3": True, "b3": False,
    }


def test_it_handles_escapes_as_regexp_escapes():
    assert excluded("star\\*\nq\\?\nnum\\d\n", "star*", "starx", "q?", "qx", "num7", "numd") == {
        "star*": True, "starx": False, "q?": True, "qx": False, "num7": True, "numd": False,
    }


def test_it_matches_double_star_at_start_middle_and_end():
    ignore = DockerIgnore.parse("**/cache\nsrc/**/gen\nlogs/**\n")
    assert ignore.excludes("cache")
    assert ignore.excludes("a/b/cache")
    assert ignore.excludes("a/b/cache/file")
    assert ignore.excludes("src/gen") and ignore.excludes("src/x/y/gen")
    assert not ignore.excludes("lib/gen")
    assert ignore.excludes("logs/today") and ignore.excludes("logs/a/b")
    # `logs/**` does not match the folder itself, so the folder entry is sent (empty).
    assert not ignore.excludes("logs")


def test_it_keeps_the_fast_path_quirks_of_patternmatcher():
    # `**x` is a plain suffix test and `x**` a plain prefix test, across folders.
    assert excluded("**cache\nbuild**\n", "mycache", "a/bcache", "buildfile", "build2/x") == {
        "mycache": True, "a/bcache": True, "buildfile": True, "build2/x": True,
    }


def test_it_applies_exceptions_in_order_with_later_patterns_winning():
    ignore = DockerIgnore.parse("*.md\n!README*.md\nREADME-secret.md\n")
    assert ignore.excludes("CHANGES.md")
    assert not ignore.excludes("README.md")
    assert ignore.excludes("README-secret.md")
    assert ignore.deciding_pattern("README.md").text == "!README*.md"
    assert ignore.deciding_pattern("README-secret.md").line == 3
    assert ignore.deciding_pattern("main.py") is None


def test_it_excludes_everything_under_an_excluded_folder():
    ignore = DockerIgnore.parse("node_modules\n")
    assert ignore.excludes("node_modules")
    assert ignore.excludes("node_modules/a/b.js")
    assert ignore.deciding_pattern("node_modules/a/b.js").text == "node_modules"
    assert not ignore.excludes("src/node_modules")


def test_it_reincludes_a_file_under_an_excluded_folder_named_by_an_exception():
    ignore = DockerIgnore.parse("docs\n!docs/keep.md\n")
    assert not ignore.excludes("docs/keep.md")
    assert ignore.excludes("docs/other.md")
    # The folder entry itself is not sent; the engine creates it for the file.
    assert ignore.excludes("docs")


def test_it_does_not_enter_an_excluded_folder_for_a_wildcard_exception():
    ignore = DockerIgnore.parse("docs\n!*/keep.md\n")
    assert ignore.excludes("docs/keep.md")
    assert ignore.deciding_pattern("docs/keep.md").text == "docs"
    assert not ignore.excludes("other/keep.md")


def test_it_follows_the_walk_not_a_full_parent_check():
    # The third pattern was skipped for `a` (already excluded), so the walk never records it for `a/b`.
    assert excluded("a\n!a/b\na\n", "a", "a/b", "a/c") == {"a": True, "a/b": False, "a/c": True}


def test_it_accepts_folder_and_member_paths_in_several_spellings():
    ignore = DockerIgnore.parse("build\n")
    assert ignore.excludes("build/") and ignore.excludes("./build/x") and not ignore.excludes(".")
    with pytest.raises(ValueError):
        ignore.excludes("../etc/passwd")
    with pytest.raises(ValueError):
        ignore.excludes("/etc/passwd")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [("ok\n[\n", 2, "syntax error"), ("a\n!\n", 2, 'illegal exclusion pattern: "!"'), ("x\\\n", 1, "syntax error"),
     ("[z-a]\n", 1, "inverted character range"), ("\n\na\\e\n", 3, "\\e"), ("[[:nope:]]\n", 1, "[:nope:]")],
)
def test_it_refuses_invalid_patterns_with_the_line_number(text, line, words):
    with pytest.raises(DockerIgnoreError) as caught:
        DockerIgnore.parse(text)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"line {line}: ")


def test_it_reads_posix_classes_inside_brackets():
    assert excluded("v[[:digit:]]\n", "v1", "vx") == {"v1": True, "vx": False}


def test_it_always_sends_the_dockerfile_and_dockerignore():
    ignore = DockerIgnore.parse("*\n")
    assert is_sent("Dockerfile", ignore)
    assert is_sent(".dockerignore", ignore)
    assert not is_sent("app.py", ignore)
    assert dropped_by_engine(ignore) == {"Dockerfile", ".dockerignore"}


def test_it_sends_a_dockerfile_in_an_excluded_subfolder_but_nothing_else_there():
    ignore = DockerIgnore.parse("build\n")
    assert is_sent("build/Dockerfile", ignore, "build/Dockerfile")
    assert not is_sent("build/other", ignore, "build/Dockerfile")
    assert not is_sent("build", ignore, "build/Dockerfile")
    assert not is_sent("build/Dockerfile", ignore, "Dockerfile")


def test_it_loses_the_dockerfile_where_the_cli_check_misses_it():
    # The CLI's one-level check does not see `**/c` excluding a/b/c, so it does not re-include the Dockerfile.
    ignore = DockerIgnore.parse("**/c\n")
    assert not is_sent("a/b/c/Dockerfile", ignore, "a/b/c/Dockerfile")


def test_it_scales_to_many_members_in_archive_order():
    ignore = DockerIgnore.parse("**/node_modules\n!**/node_modules/keep\n*.tmp\n")
    paths = [f"pkg{i}/node_modules/m{j}/index.js" for i in range(200) for j in range(50)]
    assert not any(is_sent(path, ignore) for path in reversed(paths))


def test_a_dockerfile_specific_file_sends_the_dockerfile_always_and_nothing_else_back():
    # BuildKit reads the Dockerfile on its own: it is sent whatever the patterns say, even where the CLI's
    # one-level check would miss it; `.dockerignore` and the specific file are ordinary files.
    ignore = DockerIgnore.parse("*\n**/c\n")
    for dockerfile in ("Dockerfile", "build/app.Dockerfile", "a/b/c/Dockerfile", "odd[1]*.Dockerfile"):
        assert is_sent(dockerfile, ignore, dockerfile, dockerfile_specific=True)
        assert not is_sent(".dockerignore", ignore, dockerfile, dockerfile_specific=True)
        assert not is_sent(dockerfile + ".dockerignore", ignore, dockerfile, dockerfile_specific=True)
    assert not is_sent("build/other", ignore, "build/app.Dockerfile", dockerfile_specific=True)
    assert not is_sent("a/b/c/x", ignore, "a/b/c/Dockerfile", dockerfile_specific=True)
    assert not is_sent("odd1x.Dockerfile", ignore, "odd[1]*.Dockerfile", dockerfile_specific=True)
    # The classic rule stays as it was.
    assert is_sent(".dockerignore", ignore, "Dockerfile")
    assert not is_sent("a/b/c/Dockerfile", DockerIgnore.parse("**/c\n"), "a/b/c/Dockerfile")
    assert is_sent("a/b/c/Dockerfile", DockerIgnore.parse("**/c\n"), "a/b/c/Dockerfile", dockerfile_specific=True)


def test_a_dockerfile_specific_file_keeps_what_its_patterns_keep():
    ignore = DockerIgnore.parse("*.log\n")
    for path in ("Dockerfile", ".dockerignore", "Dockerfile.dockerignore", "src/app.py"):
        assert is_sent(path, ignore, "Dockerfile", dockerfile_specific=True)
    assert not is_sent("a.log", ignore, "Dockerfile", dockerfile_specific=True)
    walk = DockerIgnore.parse("build\n").for_build("build/Dockerfile", dockerfile_specific=True)
    assert not walk.skips_folder("build")
    assert walk.excludes("build") and walk.excludes("build/other")
    assert not walk.excludes("build/Dockerfile") and walk.deciding_pattern("build/Dockerfile") is None
