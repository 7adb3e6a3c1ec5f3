"""ClickHouse's own answers for footfall's pattern functions, from random cases.

Generates random event sequences and patterns, asks ClickHouse (chDB, in process) for
sequenceMatch, sequenceCount and sequenceMatchEvents on each, and writes them to
tests/it/data/sequence_clickhouse.json, which `tests/it/sequence.rs` checks footfall against.
Nothing here runs in CI: the answers are committed. Re-run it to regenerate them:

    python="$(bash tests/pyenv.sh clickhouse tests/clickhouse/requirements.txt)"
    "$python" tests/clickhouse/sequence_cases.py

Rows are `[second, mask]` (bit k: condition k+1 holds; mask 0: no condition holds, so the row is
not an event). Rows of one second are written in footfall's order for ties (lowest condition
first), and only cases of at most 20 rows have ties: ClickHouse keeps small inputs in insertion
order but leaves ties in an undefined order in general.
"""

import json
import pathlib
import random

import chdb

CASES = 2500
OUT = pathlib.Path(__file__).resolve().parent.parent / "it" / "data" / "sequence_clickhouse.json"
OPS = ["<", "<=", ">", ">=", "=="]


def tie_key(mask):
    # footfall orders events of one instant by their conditions, lowest first
    return -int(format(mask, "032b")[::-1], 2)


def rows_for(rng, n, count, ties):
    t, rows = rng.randint(0, 3), []
    for _ in range(count):
        t += rng.choice([0, 1, 1, 2, 3, 5, 8]) if ties else rng.choice([1, 1, 2, 3, 5, 8])
        mask = 0 if rng.random() < 0.15 else rng.randint(1, (1 << n) - 1)
        if rng.random() < 0.5:  # mostly one condition, as events usually are
            mask = mask & -mask if mask else 0
        rows.append([t, mask])
    rows.sort(key=lambda r: (r[0], tie_key(r[1])))
    return rows


def pattern_for(rng, n):
    parts, last_time = [], False
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.55:
            parts.append(f"(?{rng.randint(1, n)})")
            last_time = False
        elif r < 0.65:
            parts.append(".")
            last_time = False
        elif r < 0.75:
            parts.append(".*")
            last_time = False
        elif not last_time:
            parts.append(f"(?t{rng.choice(OPS)}{rng.choice([0, 1, 2, 3, 5, 8, 13])})")
            last_time = True
    return "".join(parts)


def ask(pattern, n, rows):
    conds = ", ".join(f"bitTest(m, {k})" for k in range(n))
    values = ",".join(f"({t},{m})" for t, m in rows) or "(0,0)"
    where = "" if rows else " WHERE 0"
    sql = (
        f"SELECT sequenceMatch('{pattern}')(toDateTime(t), {conds}),"
        f" sequenceCount('{pattern}')(toDateTime(t), {conds}),"
        f" arrayMap(x -> toUInt32(x), sequenceMatchEvents('{pattern}')(toDateTime(t), {conds}))"
        f" FROM values('t UInt32, m UInt32', {values}){where}"
    )
    out = chdb.query(sql, "JSONCompact")
    row = json.loads(out.data())["data"][0]
    return bool(int(row[0])), int(row[1]), [int(x) for x in row[2]]


def main():
    rng = random.Random(19)
    cases = []
    for i in range(CASES):
        n = rng.randint(2, 4)  # ClickHouse takes at least two conditions
        big = i % 10 == 9
        count = rng.randint(21, 80) if big else rng.randint(0, 20)
        rows = rows_for(rng, n, count, ties=not big)
        pattern = pattern_for(rng, n) if i % 50 else rng.choice(["", ".", ".*", ".*.", "(?t<3)", "(?t>=0)"])
        match, count_, events = ask(pattern, n, rows)
        cases.append({"n": n, "pattern": pattern, "rows": rows, "match": match, "count": count_, "events": events})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        f.write("\n]\n")
    print(f"{len(cases)} cases, {sum(c['match'] for c in cases)} matches -> {OUT}")


if __name__ == "__main__":
    main()
