"""docs/SQL_REFERENCE.md cannot drift: it must equal memory.api_reference() of a freshly migrated
database (run `make docs` after changing sql/ or migrations/)."""

from __future__ import annotations

import difflib
from pathlib import Path

from pgmemo.docs import reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "SQL_REFERENCE.md"


def test_committed_reference_matches_the_database(dsn):
    expected = reference(dsn)
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    diff = "".join(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                        "docs/SQL_REFERENCE.md", "memory.api_reference()", n=1))
    assert current == expected, f"docs/SQL_REFERENCE.md is out of date: run `make docs`\n{diff[:4000]}"


def test_reference_covers_every_function_and_view(conn):
    text = conn.execute("SELECT memory.api_reference() AS t").fetchone()["t"]
    objects = conn.execute(
        "SELECT p.proname AS name FROM pg_proc AS p WHERE p.pronamespace = 'memory'::regnamespace"
        " UNION SELECT c.relname FROM pg_class AS c"
        " WHERE c.relnamespace = 'memory'::regnamespace AND c.relkind IN ('v', 'm')").fetchall()
    assert len(objects) > 20
    for row in objects:
        assert f"### memory.{row['name']}\n" in text, row["name"]
    assert "_(no comment)_" not in text, "a public function or view has no COMMENT ON"
    assert "memory.search(domain text, query_embedding vector, k integer DEFAULT 5" in text


def test_docs_command_check_mode(dsn, tmp_path):
    from pgmemo.docs import main

    out = tmp_path / "ref.md"
    assert main(["--dsn", dsn, "--output", str(out)]) == 0
    assert main(["--dsn", dsn, "--output", str(out), "--check"]) == 0
    out.write_text(out.read_text() + "drift\n")
    assert main(["--dsn", dsn, "--output", str(out), "--check"]) == 1


# -- the prose docs against the code -----------------------------------------------------------
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md")
                                    if p.name != "SQL_REFERENCE.md")]


def test_every_diagnose_check_is_in_the_readme_table(conn):
    """Each check_name memory.diagnose can return (read from the check functions' own source)
    has a row in the README's troubleshooting table."""
    import re

    sources = conn.execute(
        "SELECT string_agg(p.prosrc, E'\\n') AS src FROM pg_proc AS p"
        " WHERE p.pronamespace = 'memory_private'::regnamespace"
        " AND p.proargnames @> ARRAY['check_name']").fetchone()["src"]
    names = set(re.findall(r"'(?:error|warning|info)'(?:::text)?,\s*[\w.:]+,\s*'([a-z_]+)'",
                           sources))
    assert {"no_vector_index", "shard_missing_index", "adopted_table_runs_foreign_code",
            "no_domains"} <= names
    readme = (ROOT / "README.md").read_text()
    assert sorted(n for n in names if f"| `{n}` |" not in readme) == []


def _doc_commands():
    """(file, line, command words, options) of every `pgmemo ...` in the docs' code."""
    import re

    for path in DOCS:
        full = path.read_text()
        blocks = [(m.start(1), m.group(1)) for m in re.finditer(r"```\w*\n(.*?)```", full, re.S)]
        prose = re.sub(r"```.*?```", lambda m: " " * len(m.group()), full, flags=re.S)
        blocks += [(m.start(1), m.group(1)) for m in re.finditer(r"`([^`\n]+)`", prose)]
        for start, code in blocks:
            # a command: pgmemo first on a line (or after $, ;, |, &&), not in prose or Python
            for m in re.finditer(r"(?:^[ \t]*(?:\$ )?|[;|&] *)pgmemo((?: +[a-z][\w-]*)+)([^\n]*)",
                                 code, re.M):
                line = full.count("\n", 0, start + m.start()) + 1
                rest = re.sub(r"'[^']*'|\"[^\"]*\"", " ", m.group(2).split("#")[0])
                yield path.name, line, m.group(1).split(), re.findall(r"(?<![\w-])--?[a-z][\w-]*",
                                                                     rest)


def test_every_command_and_option_the_docs_show_exists():
    import click

    from pgmemo.cli import main

    def options(cmd):
        found = {"--help", "-h"}
        for param in cmd.params:
            found.update(getattr(param, "opts", ()))
            found.update(getattr(param, "secondary_opts", ()))
        return found

    seen, bad = 0, []
    for name, line, words, opts in _doc_commands():
        cmd, allowed, path = main, options(main), []
        for word in words:
            if not isinstance(cmd, click.Group) or word not in cmd.commands:
                break
            cmd = cmd.commands[word]
            allowed |= options(cmd)
            path.append(word)
        if not path:
            bad.append(f"{name}:{line}: no command pgmemo {words[0]}")
            continue
        seen += 1
        bad += [f"{name}:{line}: pgmemo {' '.join(path)} has no option {o}"
                for o in opts if o not in allowed]
    assert seen > 30 and bad == []


def test_every_command_has_help():
    """`pgmemo ... --help` of every command and subcommand works and says what each option is."""
    import click
    from click.testing import CliRunner

    from pgmemo.cli import main

    def walk(cmd, path):
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])

    undocumented = []
    for path, cmd in walk(main, []):
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path
        assert (cmd.help or "").strip(), f"pgmemo {' '.join(path)} has no help text"
        undocumented += [f"pgmemo {' '.join(path)} {p.opts[0]}" for p in cmd.params
                         if isinstance(p, click.Option) and not p.help and not p.is_flag
                         and p.type.name not in ("choice",)]
    assert undocumented == [], undocumented
