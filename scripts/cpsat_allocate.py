#!/usr/bin/env python3
"""Solve an exported allocation instance (`custodia bench allocate --export FILE`) with CP-SAT.

Same hard rules as `domain::allocation`, same lexicographic objective, solved in three stages:
maximise people placed; with that fixed, minimise the highest occupancy ratio; with both fixed,
minimise the number of (rival group, cell) pairs. Interchangeable people (same facility, category
and groups, named in no person rule) are one integer count per cell, so the model stays small.

One simplification, sound but stricter than the rules: a person or class covered by both sides of
one keep-apart rule is kept out of any area where that rule applies to someone (the generated
benchmark instances have no such people).

Prints one JSON line: people, status, placed, max_ratio, group_cells, seconds (model and solve),
and the status of each stage.
"""

import argparse
import json
import sys
import time
from collections import defaultdict

from ortools.sat.python import cp_model

SCALE = 1_000_000  # the highest ratio is minimised in millionths


def category(member):
    c = member["category"]
    return (c["sex"], c["age"], c["status"], c["regime"])


def refuses(designation, cat):
    for key, value in zip(("sex", "age", "status", "regime"), cat):
        if designation.get(key) is not None and designation[key] != value:
            return True
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds for all three stages")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    with open(args.instance) as f:
        instance = json.load(f)
    cells, people, rules = instance["cells"], instance["people"], instance["rules"]

    named = {r[side]["id"] for r in rules for side in ("a", "b") if r[side]["kind"] == "person"}
    rival_groups = set()
    for r in rules:
        if r["a"]["kind"] == "group" and r["b"]["kind"] == "group":
            rival_groups.update((r["a"]["id"], r["b"]["id"]))

    # Entities: one per named person, one per class of interchangeable people.
    entities = []  # dict(facility, category, groups, count, person or None)
    classes = {}
    for p in people:
        m = p["member"]
        key = (p["facility"], category(m), tuple(sorted(set(m["groups"]))))
        if m["person"] in named:
            entities.append({"facility": key[0], "category": key[1], "groups": key[2], "count": 1, "person": m["person"]})
        elif key in classes:
            entities[classes[key]]["count"] += 1
        else:
            classes[key] = len(entities)
            entities.append({"facility": key[0], "category": key[1], "groups": key[2], "count": 1, "person": None})
    people_of = defaultdict(int)
    for p in people:
        people_of[p["facility"]] += 1

    model = cp_model.CpModel()
    room, fixed, occ = [], [], []
    for cell in cells:
        cats = {category(m) for m in cell["occupants"]}
        n = len(cell["occupants"])
        total = cell["limit"] if cell["limit"] is not None else n + people_of[cell["facility"]]
        if cell["single"]:
            total = min(total, 1)
        open_ = cell["in_use"] and cell["balance_capacity"] > 0 and len(cats) <= 1
        room.append(max(0, total - n) if open_ else 0)
        fixed.append(next(iter(cats)) if cats else None)
        occ.append(n)

    x = {}  # (entity, cell) -> var
    by_cell = defaultdict(list)
    by_entity = defaultdict(list)
    cells_of_facility = defaultdict(list)
    for i, cell in enumerate(cells):
        cells_of_facility[cell["facility"]].append(i)
    for e, ent in enumerate(entities):
        for i in cells_of_facility[ent["facility"]]:
            cell = cells[i]
            if room[i] == 0 or refuses(cell["designation"], ent["category"]):
                continue
            if fixed[i] is not None and fixed[i] != ent["category"]:
                continue
            ub = min(ent["count"], room[i])
            v = model.NewBoolVar("") if ub == 1 else model.NewIntVar(0, ub, "")
            x[e, i] = v
            by_cell[i].append(e)
            by_entity[e].append(i)
    for e, ent in enumerate(entities):
        if by_entity[e]:
            model.Add(sum(x[e, i] for i in by_entity[e]) <= ent["count"])
    for i, es in by_cell.items():
        model.Add(sum(x[e, i] for e in es) <= room[i])
        cats = sorted({entities[e]["category"] for e in es})
        if fixed[i] is None and len(cats) > 1:
            z = {k: model.NewBoolVar("") for k in cats}
            model.Add(sum(z.values()) <= 1)
            for e in es:
                model.Add(x[e, i] <= min(entities[e]["count"], room[i]) * z[entities[e]["category"]])

    def ub(e, i):
        return min(entities[e]["count"], room[i])

    # Presence of a group's newcomers in a cell, shared by rules and the third objective.
    presence = {}

    def group_in_cell(g, i):
        if (g, i) not in presence:
            es = [e for e in by_cell.get(i, []) if g in entities[e]["groups"]]
            if not es:
                presence[g, i] = None
            else:
                b = model.NewBoolVar("")
                for e in es:
                    model.Add(x[e, i] <= ub(e, i) * b)
                presence[g, i] = b
        return presence[g, i]

    area_presence = {}
    entity_of_person = {ent["person"]: e for e, ent in enumerate(entities) if ent["person"] is not None}
    entities_of_group = defaultdict(list)
    for e, ent in enumerate(entities):
        for g in ent["groups"]:
            entities_of_group[g].append(e)

    def covered(party):
        if party["kind"] == "person":
            return [entity_of_person[party["id"]]] if party["id"] in entity_of_person else []
        return entities_of_group.get(party["id"], [])

    def party_in(party, key, area_cells):
        """A linear expression, at least 1 when a newcomer covered by `party` is in the area."""
        if party["kind"] == "person":
            e = entity_of_person.get(party["id"])
            terms = [x[e, i] for i in area_cells if (e, i) in x]
            return sum(terms) if terms else None
        g = party["id"]
        if len(area_cells) == 1:
            return group_in_cell(g, area_cells[0])
        if (g, key) not in area_presence:
            parts = [b for b in (group_in_cell(g, i) for i in area_cells) if b is not None]
            if not parts:
                area_presence[g, key] = None
            else:
                b = model.NewBoolVar("")
                for part in parts:
                    model.Add(part <= b)
                area_presence[g, key] = b
        return area_presence[g, key]

    scope_key = {"cell": "id", "unit": "unit", "facility": "facility"}
    areas = {scope: defaultdict(list) for scope in scope_key}
    # Who is already in each area: persons and groups.
    held = {scope: defaultdict(lambda: (set(), set())) for scope in scope_key}
    for i, cell in enumerate(cells):
        for scope, field in scope_key.items():
            areas[scope][cell[field]].append(i)
            persons, groups = held[scope][cell[field]]
            for m in cell["occupants"]:
                persons.add(m["person"])
                groups.update(m["groups"])

    def there(party, scope, key):
        persons, groups = held[scope][key]
        return party["id"] in persons if party["kind"] == "person" else party["id"] in groups

    for r in rules:
        scope, field = r["scope"], scope_key[r["scope"]]
        touched = {cells[i][field] for e in covered(r["a"]) + covered(r["b"]) for i in by_entity[e]}
        for key in touched:
            area_cells = areas[scope][key]
            a = party_in(r["a"], (scope, key), area_cells)
            b = party_in(r["b"], (scope, key), area_cells)
            if a is not None and there(r["b"], scope, key):
                model.Add(a == 0)
            if b is not None and there(r["a"], scope, key):
                model.Add(b == 0)
            if a is not None and b is not None:
                model.Add(a + b <= 1)

    placed = cp_model.LinearExpr.Sum(list(x.values()))
    stages = []

    def solve(budget):
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(1.0, budget)
        solver.parameters.num_workers = args.workers
        status = solver.Solve(model)
        stages.append(solver.StatusName(status))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            model.ClearHints()
            for v in x.values():
                model.AddHint(v, solver.Value(v))
            return solver
        return None

    deadline = started + args.time_limit
    # Stage 1: most people placed.
    model.Maximize(placed)
    solver = solve((deadline - time.monotonic()) / 3)
    if solver is None:
        print(json.dumps({"people": len(people), "status": stages[-1], "stages": stages}))
        return 1
    best_placed = round(solver.ObjectiveValue())
    model.Add(placed >= best_placed)

    # Stage 2: the lowest highest ratio; ratio ≤ level / SCALE in every cell.
    ratios = [(occ[i] + room[i]) / c["balance_capacity"] for i, c in enumerate(cells) if c["balance_capacity"] > 0]
    level = model.NewIntVar(0, int(SCALE * max(ratios + [0])) + 1, "level")
    for i, cell in enumerate(cells):
        if cell["balance_capacity"] > 0:
            here = sum(x[e, i] for e in by_cell.get(i, []))
            model.Add(SCALE * (occ[i] + here) <= level * cell["balance_capacity"])
    model.Minimize(level)
    better = solve((deadline - time.monotonic()) / 2)
    if better is not None:
        solver = better
        model.Add(level <= solver.Value(level))
    else:
        count = list(occ)
        for (e, i), v in x.items():
            count[i] += solver.Value(v)
        worst = max(-(-SCALE * count[i] // c["balance_capacity"]) for i, c in enumerate(cells) if c["balance_capacity"])
        model.Add(level <= worst)

    # Stage 3: fewest (rival group, cell) pairs, counting groups already in cells.
    existing = {(g, i) for i, c in enumerate(cells) for m in c["occupants"] for g in m["groups"] if g in rival_groups}
    terms = []
    for g in sorted(rival_groups):
        for i in range(len(cells)):
            if (g, i) in existing:
                continue
            b = group_in_cell(g, i)
            if b is not None:
                terms.append(b)
    model.Minimize(cp_model.LinearExpr.Sum(terms))
    solver = solve(deadline - time.monotonic()) or solver

    # Score the final solution directly from its placements.
    count = list(occ)
    groups = set(existing)
    total = 0
    for (e, i), v in x.items():
        n = solver.Value(v)
        if n:
            total += n
            count[i] += n
            groups.update((g, i) for g in entities[e]["groups"] if g in rival_groups)
    max_ratio = max([count[i] / c["balance_capacity"] for i, c in enumerate(cells) if c["balance_capacity"] > 0] + [0.0])
    status = "OPTIMAL" if all(s == "OPTIMAL" for s in stages) else "FEASIBLE"
    print(json.dumps({
        "people": len(people),
        "status": status,
        "placed": total,
        "max_ratio": max_ratio,
        "group_cells": len(groups),
        "seconds": round(time.monotonic() - started, 2),
        "stages": stages,
        "entities": len(entities),
        "variables": len(x),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
