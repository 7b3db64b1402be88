"""What may live where: the re-applied files in sql/ hold only CREATE OR REPLACE (and COMMENT ON;
sql/90_grants.sql also re-applies the grants in one DO block, and sql/30_search.sql creates
memory.search, which is generated, from its template in one DO block; the helpers whose rule
memory.search splices in, made from the same text, are created in a DO block each:
00_private_helpers.sql, 05_trust.sql and 30_search.sql, which also makes memory.search_hybrid
from its text with those rules spliced; 31_bm25.sql makes memory_private._text_candidate_pick
with the candidate rule that the hybrid's branches splice too; 37_search_hybrid.sql makes the first version of
memory.search_hybrid, also generated, from its template). A DROP, an ALTER, a CREATE
without OR REPLACE belongs in a versioned migration, applied once (a retired signature is dropped
by the migration that retired it). And how dynamic SQL is written: one dollar-quoted template per
statement (below)."""

from __future__ import annotations

import re

import pytest

from pgmemo import resources

# Comments, quoted strings and dollar-quoted bodies, removed before splitting into statements.
_NOISE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\$([A-Za-z_0-9]*)\$.*?\$\1\$", re.S)
ALLOWED = re.compile(r"^(CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW)|COMMENT ON) ", re.I)


def statements(text: str) -> list[str]:
    body = _NOISE.sub(" ", text)
    return [" ".join(s.split()) for s in body.split(";") if s.strip()]


def test_statement_splitter_sees_what_it_must():
    text = ("-- a; comment\nCREATE OR REPLACE FUNCTION f() RETURNS int AS $f$ DROP TABLE x; $f$;\n"
            "COMMENT ON FUNCTION f() IS 'it; drops';\nDROP FUNCTION IF EXISTS g(int);\n")
    assert [s.split()[0] for s in statements(text)] == ["CREATE", "COMMENT", "DROP"]


# The files with DO blocks (see above).
GENERATING = ("00_private_helpers.sql", "05_trust.sql", "30_search.sql", "31_bm25.sql",
              "37_search_hybrid.sql", "90_grants.sql")


@pytest.mark.parametrize("path", resources.sql_files(), ids=lambda p: p.name)
def test_reapplied_file_holds_only_create_or_replace(path):
    bad = [s[:100] for s in statements(path.read_text())
           if not ALLOWED.match(s + " ")
           and not (path.name in GENERATING and s.split()[0].upper() == "DO")]
    assert bad == [], f"sql/{path.name}: statements that belong in a migration: {bad}"


# -- dynamic SQL: one dollar-quoted template per statement ---------------------------------------
# The rule (STYLE.md, pgmq's way): a statement built at run time is ONE dollar-quoted template
# passed to format(), identifiers through %I, values through EXECUTE ... USING. What the scanner
# below catches: a format() inside the format() of an SQL template, an SQL template written as
# several quoted fragments (joined by || or by adjacent literals), an SQL template with doubled
# quotes, an SQL template in single quotes (the template of a format() or an EXECUTE: dollar-quote
# it), and EXECUTE of a concatenation (a string pasted into a statement).
_TOKEN = re.compile(r"""
  (?P<comment>--[^\n]*|/\*.*?\*/)
 |(?P<dollar>\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)
 |(?P<quote>[Ee]?'(?:[^']|'')*')
 |(?P<ident>[A-Za-z_][A-Za-z_0-9$]*)
 |(?P<op>\|\||:=|[(),;])
 |(?P<other>\S)
""", re.S | re.X)
# How an SQL template (or a fragment of one) starts; messages and COMMENT texts do not.
_SQL_START = re.compile(
    r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|TRUNCATE|COMMENT ON|GRANT|REVOKE|"
    r"LOCK|REINDEX|ANALYZE|VACUUM|CALL|WHERE|FROM|AND|JOIN|LEFT JOIN|ORDER BY|GROUP BY|LIMIT|"
    r"VALUES|RETURNING|USING|ON CONFLICT|SET)\b")
_FUNCTION = re.compile(r"CREATE OR REPLACE (?:FUNCTION|PROCEDURE) ([a-z_]+\.[a-z_0-9]+)\(", re.I)


def _tokens(text: str, line0: int) -> tuple[list[tuple[str, str, str, int]], list[tuple[str, int]]]:
    """(kind, text, value, line) tokens, and the dollar-quoted bodies (scanned as code too)."""
    toks, bodies, pos = [], [], 0
    while (m := _TOKEN.search(text, pos)) is not None:
        line = line0 + text.count("\n", 0, m.start())
        kind = m.lastgroup
        pos = m.end()
        if kind == "dollar":
            end = text.find(m.group(), m.end())
            end = len(text) if end < 0 else end
            body = text[m.end():end]
            toks.append(("lit", "$", body, line))
            bodies.append((body, line))
            pos = end + len(m.group())
        elif kind == "quote":
            toks.append(("lit", "'", m.group()[m.group().index("'") + 1:-1], line))
        elif kind != "comment":
            toks.append((kind, m.group(), m.group(), line))
    return toks, bodies


def _scan(toks: list[tuple[str, str, str, int]]) -> list[tuple[int, str]]:
    out, n, i = [], len(toks), 0
    while i < n:
        kind, text, value, line = toks[i]
        if kind == "lit" and not (i and toks[i - 1][1] == "||"):
            lits, pasted, j = [toks[i]], False, i + 1
            while j < n:
                if toks[j][0] == "lit":
                    lits.append(toks[j])
                    j += 1
                elif toks[j][1] == "||" and j + 1 < n and toks[j + 1][0] == "lit":
                    lits.append(toks[j + 1])
                    j += 2
                else:
                    pasted = toks[j][1] == "||"
                    break
            template_arg = (i >= 2 and toks[i - 1][1] == "(" and toks[i - 2][1].lower() == "format") \
                or (i >= 1 and toks[i - 1][1].upper() == "EXECUTE")
            if _SQL_START.match(value):
                if template_arg and text == "'" and len(lits) == 1 and not pasted and "''" not in value:
                    out.append((line, "an SQL template in single quotes (not dollar-quoted)"))
                if pasted:
                    out.append((line, "a string pasted into an SQL template with ||"))
                elif len(lits) > 1:
                    out.append((line, "an SQL template in several quoted fragments"))
                elif any(t[1] == "'" and "''" in t[2] for t in lits):
                    out.append((line, "an SQL template with doubled quotes"))
            i = j
            continue
        if (kind == "ident" and text.lower() == "format" and i + 2 < n and toks[i + 1][1] == "("
                and ((toks[i + 2][0] == "lit" and _SQL_START.match(toks[i + 2][2]))
                     or (i and toks[i - 1][1].upper() == "EXECUTE"))):
            depth, j = 0, i + 1
            while j < n:
                depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
                if depth == 0:
                    break
                if toks[j][0] == "ident" and toks[j][1].lower() == "format" and toks[j + 1][1] == "(":
                    out.append((toks[j][3], "format inside the format of an SQL template"))
                j += 1
        if kind == "ident" and text.upper() == "EXECUTE" and i + 1 < n \
                and toks[i + 1][1].upper() not in ("FUNCTION", "PROCEDURE"):
            depth, j = 0, i + 1
            while j < n and not (depth == 0 and (toks[j][1] == ";" or toks[j][1].upper()
                                                 in ("INTO", "USING"))):
                depth += {"(": 1, ")": -1}.get(toks[j][1], 0)
                if toks[j][1] == "||" and depth == 0:
                    out.append((toks[j][3], "EXECUTE of a concatenation (a string pasted in)"))
                j += 1
        i += 1
    return out


def dynamic_sql_problems(text: str) -> list[tuple[int, str, str]]:
    """(line, enclosing function, problem) for every breach of the rule in an SQL file."""
    found: set[tuple[int, str]] = set()
    todo = [(text, 1)]
    while todo:
        chunk, line0 = todo.pop()
        toks, bodies = _tokens(chunk, line0)
        found.update(_scan(toks))
        todo += bodies
    starts = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _FUNCTION.finditer(text)]
    return [(line, max((s for s in starts if s[0] <= line), default=(0, "-"))[1], what)
            for line, what in sorted(found)]


# Files (or functions) not rewritten yet, each with who is on it. Remove an entry when its file
# is fixed: from then on the test keeps it so.
NOT_YET = {
}
NOT_YET_FUNCTIONS = {
}


def test_dynamic_sql_scanner_sees_what_it_must():
    bad = """CREATE OR REPLACE FUNCTION memory_private.f(d int) RETURNS void AS $$
    BEGIN
        EXECUTE format('SELECT %s FROM %I', format('x%s', d), 't');
        EXECUTE format('SELECT a FROM %I '
            'WHERE b = ''c''', 't');
        EXECUTE 'DELETE FROM t WHERE b = ''c''';
        EXECUTE 'SELECT 1 FROM t WHERE ' || v_where;
        EXECUTE format('DROP TABLE %I', 't');
        v := 'UPDATE t SET a = 1 WHERE ' || v_where;
    END $$;"""
    assert [what.split(" (")[0].split(" with")[0] for _, _, what in dynamic_sql_problems(bad)] == [
        "an SQL template in single quotes", "format inside the format of an SQL template",
        "an SQL template in several quoted fragments", "an SQL template",
        "EXECUTE of a concatenation", "a string pasted into an SQL template",
        "an SQL template in single quotes", "a string pasted into an SQL template"]
    good = """CREATE OR REPLACE FUNCTION memory_private.g(d int) RETURNS void AS $$
    BEGIN
        EXECUTE format($q$ SELECT a FROM %I.%I WHERE b = 'c' AND e = $1 $q$, 's', 't') USING d;
        RAISE EXCEPTION 'domain ''%'' is ' 'unknown', d;
        v := format('%s rows of %s', 1, format('%I', 't'));
    END $$;
    COMMENT ON FUNCTION memory_private.g(int) IS 'Select ' 'what''s there.';"""
    assert dynamic_sql_problems(good) == []


@pytest.mark.parametrize("path", resources.sql_files(), ids=lambda p: p.name)
def test_dynamic_sql_is_one_dollar_quoted_template_per_statement(path):
    if path.name in NOT_YET:
        pytest.skip(f"not rewritten yet: {NOT_YET[path.name]}")
    bad = [f"line {line} ({fn}): {what}" for line, fn, what in dynamic_sql_problems(path.read_text())
           if (path.name, fn) not in NOT_YET_FUNCTIONS]
    assert bad == [], f"sql/{path.name}: " + "; ".join(bad)


def test_the_not_yet_lists_name_only_what_still_breaks_the_rule():
    """An entry is removed as soon as its file (or function) follows the rule."""
    files = {p.name: p for p in resources.sql_files()}
    for name in NOT_YET:
        assert name in files and dynamic_sql_problems(files[name].read_text()), name
    for name, fn in NOT_YET_FUNCTIONS:
        assert any(f == fn for _, f, _ in dynamic_sql_problems(files[name].read_text())), fn
