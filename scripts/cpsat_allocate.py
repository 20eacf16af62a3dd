#!/usr/bin/env python3
"""Solve an exported allocation instance (`custodia bench allocate --export FILE`) with CP-SAT.

Same hard rules as `domain::allocation`, same lexicographic objective, solved in three stages:
maximise people placed; with that fixed, minimise the highest occupancy ratio; with both fixed,
minimise the number of (rival group, cell) pairs. Interchangeable people (same facility, category
and groups) are one integer count per cell, so the model stays small.

People named in person rules are handled exactly in two steps. First the aggregated model is
solved with every person rule left out: a relaxation, so its optimum is at least as good as the
true one. Then the named people are put into that solution's cells (a small feasibility model:
each into a cell where their class has a place and no rule forbids them). If that succeeds, the relaxation's
optimum is reached under every rule, so it is the true optimum (and proven so when CP-SAT proved
each stage). If it fails, the full model (one Boolean per named person and cell, every rule) is
solved in the time left.

One simplification, sound but stricter than the rules: a person or class covered by both sides of
one keep-apart rule is kept out of any area where that rule applies to someone (the generated
benchmark instances have no such people).

Prints one JSON line: people, status, placed, max_ratio, group_cells, seconds (model and solve),
method, and the status of each stage. The time limit counts solving only, not reading the file.
"""

import argparse
import json
import os
import sys
import time
from collections import defaultdict

from ortools.sat.python import cp_model

SCALE = 1_000_000  # the highest ratio is minimised in millionths
SCOPE_FIELD = {"cell": "id", "unit": "unit", "facility": "facility"}


def category(member):
    c = member["category"]
    return (c["sex"], c["age"], c["status"], c["regime"])


def refuses(designation, cat):
    return any(designation.get(k) is not None and designation[k] != v for k, v in zip(("sex", "age", "status", "regime"), cat))


class Estate:
    """The instance with per-cell facts and who is already where."""

    def __init__(self, instance):
        self.cells, self.people, self.rules = instance["cells"], instance["people"], instance["rules"]
        self.rival_groups = set()
        for r in self.rules:
            if r["a"]["kind"] == "group" and r["b"]["kind"] == "group":
                self.rival_groups.update((r["a"]["id"], r["b"]["id"]))
        people_of = defaultdict(int)
        for p in self.people:
            people_of[p["facility"]] += 1
        self.room, self.fixed, self.occ = [], [], []
        for cell in self.cells:
            cats = {category(m) for m in cell["occupants"]}
            n = len(cell["occupants"])
            total = cell["limit"] if cell["limit"] is not None else n + people_of[cell["facility"]]
            if cell["single"]:
                total = min(total, 1)
            open_ = cell["in_use"] and cell["balance_capacity"] > 0 and len(cats) <= 1
            self.room.append(max(0, total - n) if open_ else 0)
            self.fixed.append(next(iter(cats)) if cats else None)
            self.occ.append(n)
        self.cells_of_facility = defaultdict(list)
        self.areas = {scope: defaultdict(list) for scope in SCOPE_FIELD}
        self.held = {scope: defaultdict(lambda: (set(), set())) for scope in SCOPE_FIELD}
        for i, cell in enumerate(self.cells):
            self.cells_of_facility[cell["facility"]].append(i)
            for scope, field in SCOPE_FIELD.items():
                self.areas[scope][cell[field]].append(i)
                persons, groups = self.held[scope][cell[field]]
                for m in cell["occupants"]:
                    persons.add(m["person"])
                    groups.update(m["groups"])
        self.existing_groups = {
            (g, i) for i, c in enumerate(self.cells) for m in c["occupants"] for g in m["groups"] if g in self.rival_groups
        }

    def there(self, party, scope, key):
        persons, groups = self.held[scope][key]
        return party["id"] in persons if party["kind"] == "person" else party["id"] in groups

    def score(self, counts, groups_of):
        """placed, max ratio, group cells of a solution given as {(entity, cell): n}."""
        count = list(self.occ)
        pairs = set(self.existing_groups)
        placed = 0
        for (e, i), n in counts.items():
            if n:
                placed += n
                count[i] += n
                pairs.update((g, i) for g in groups_of(e) if g in self.rival_groups)
        ratios = [count[i] / c["balance_capacity"] for i, c in enumerate(self.cells) if c["balance_capacity"] > 0]
        return placed, max(ratios + [0.0]), len(pairs)


class Formulation:
    """A CP-SAT model of the estate; people named in `named` get one Boolean per cell, the rest
    are counted per class. Rules naming a person outside `named` are left out (a relaxation)."""

    def __init__(self, estate, named):
        self.estate = estate
        e_ = estate
        self.entities = []
        classes = {}
        for p in e_.people:
            m = p["member"]
            key = (p["facility"], category(m), tuple(sorted(set(m["groups"]))))
            if m["person"] in named:
                self.entities.append({"key": key, "count": 1, "person": m["person"]})
            elif key in classes:
                self.entities[classes[key]]["count"] += 1
            else:
                classes[key] = len(self.entities)
                self.entities.append({"key": key, "count": 1, "person": None})
        model = self.model = cp_model.CpModel()
        x = self.x = {}
        self.by_cell = defaultdict(list)
        self.by_entity = defaultdict(list)
        for e, ent in enumerate(self.entities):
            facility, cat, _ = ent["key"]
            for i in e_.cells_of_facility[facility]:
                if e_.room[i] == 0 or refuses(e_.cells[i]["designation"], cat):
                    continue
                if e_.fixed[i] is not None and e_.fixed[i] != cat:
                    continue
                ub = min(ent["count"], e_.room[i])
                x[e, i] = model.NewBoolVar("") if ub == 1 else model.NewIntVar(0, ub, "")
                self.by_cell[i].append(e)
                self.by_entity[e].append(i)
        for e, ent in enumerate(self.entities):
            if self.by_entity[e]:
                model.Add(sum(x[e, i] for i in self.by_entity[e]) <= ent["count"])
        for i, es in self.by_cell.items():
            model.Add(sum(x[e, i] for e in es) <= e_.room[i])
            cats = sorted({self.entities[e]["key"][1] for e in es})
            if e_.fixed[i] is None and len(cats) > 1:
                z = {k: model.NewBoolVar("") for k in cats}
                model.Add(sum(z.values()) <= 1)
                for e in es:
                    model.Add(x[e, i] <= self.ub(e, i) * z[self.entities[e]["key"][1]])
        self.presence = {}
        self.area_presence = {}
        self.entity_of_person = {ent["person"]: e for e, ent in enumerate(self.entities) if ent["person"] is not None}
        self.entities_of_group = defaultdict(list)
        for e, ent in enumerate(self.entities):
            for g in ent["key"][2]:
                self.entities_of_group[g].append(e)
        candidates = {p["member"]["person"] for p in e_.people}
        for r in e_.rules:
            # A rule naming a candidate not modelled one by one is left out (the relaxation).
            if any(q["kind"] == "person" and q["id"] in candidates and q["id"] not in named for q in (r["a"], r["b"])):
                continue
            scope, field = r["scope"], SCOPE_FIELD[r["scope"]]
            touched = {e_.cells[i][field] for e in self.covered(r["a"]) + self.covered(r["b"]) for i in self.by_entity[e]}
            for key in touched:
                area_cells = e_.areas[scope][key]
                a = self.party_in(r["a"], (scope, key), area_cells)
                b = self.party_in(r["b"], (scope, key), area_cells)
                if a is not None and e_.there(r["b"], scope, key):
                    model.Add(a == 0)
                if b is not None and e_.there(r["a"], scope, key):
                    model.Add(b == 0)
                if a is not None and b is not None:
                    model.Add(a + b <= 1)
        self.placed = cp_model.LinearExpr.Sum(list(x.values()))

    def ub(self, e, i):
        return min(self.entities[e]["count"], self.estate.room[i])

    def covered(self, party):
        if party["kind"] == "person":
            e = self.entity_of_person.get(party["id"])
            return [] if e is None else [e]
        return self.entities_of_group.get(party["id"], [])

    def group_in_cell(self, g, i):
        if (g, i) not in self.presence:
            es = [e for e in self.by_cell.get(i, []) if g in self.entities[e]["key"][2]]
            if not es:
                self.presence[g, i] = None
            else:
                b = self.model.NewBoolVar("")
                for e in es:
                    self.model.Add(self.x[e, i] <= self.ub(e, i) * b)
                self.presence[g, i] = b
        return self.presence[g, i]

    def party_in(self, party, key, area_cells):
        """A linear expression, at least 1 when a newcomer covered by `party` is in the area."""
        if party["kind"] == "person":
            e = self.entity_of_person.get(party["id"])
            terms = [self.x[e, i] for i in area_cells if (e, i) in self.x]
            return sum(terms) if terms else None
        g = party["id"]
        if len(area_cells) == 1:
            return self.group_in_cell(g, area_cells[0])
        if (g, key) not in self.area_presence:
            parts = [b for b in (self.group_in_cell(g, i) for i in area_cells) if b is not None]
            if not parts:
                self.area_presence[g, key] = None
            else:
                b = self.model.NewBoolVar("")
                for part in parts:
                    self.model.Add(part <= b)
                self.area_presence[g, key] = b
        return self.area_presence[g, key]

    def solve(self, deadline, workers):
        """The three stages; returns (counts {(entity, cell): n}, stage statuses) or (None, statuses)."""
        model, x, e_ = self.model, self.x, self.estate
        stages = []

        def run(budget):
            solver = cp_model.CpSolver()
            solver.parameters.max_time_in_seconds = max(1.0, budget)
            solver.parameters.num_workers = workers
            solver.parameters.log_search_progress = bool(os.environ.get("CPSAT_LOG"))
            status = solver.Solve(model)
            stages.append(solver.StatusName(status))
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                model.ClearHints()
                for v in x.values():
                    model.AddHint(v, solver.Value(v))
                return {key: solver.Value(v) for key, v in x.items()}, solver
            return None, None

        model.Maximize(self.placed)
        counts, solver = run((deadline - time.monotonic()) / 3)
        if counts is None:
            return None, stages
        model.Add(self.placed >= sum(counts.values()))

        ratios = [(e_.occ[i] + e_.room[i]) / c["balance_capacity"] for i, c in enumerate(e_.cells) if c["balance_capacity"] > 0]
        level = model.NewIntVar(0, int(SCALE * max(ratios + [0])) + 1, "level")
        for i, cell in enumerate(e_.cells):
            if cell["balance_capacity"] > 0:
                here = sum(x[e, i] for e in self.by_cell.get(i, []))
                model.Add(SCALE * (e_.occ[i] + here) <= level * cell["balance_capacity"])
        model.Minimize(level)
        better, solver = run((deadline - time.monotonic()) / 2)
        counts = better or counts
        count = list(e_.occ)
        for (e, i), n in counts.items():
            count[i] += n
        worst = max([-(-SCALE * count[i] // c["balance_capacity"]) for i, c in enumerate(e_.cells) if c["balance_capacity"]] + [0])
        model.Add(level <= worst)

        # With the level fixed, each cell's places are known: tighter links make the bound strong.
        level_value = min(worst, solver.Value(level)) if better else worst
        cap = [
            max(0, min(e_.room[i], level_value * c["balance_capacity"] // SCALE - e_.occ[i])) if c["balance_capacity"] else 0
            for i, c in enumerate(e_.cells)
        ]
        terms = []
        for i, es in self.by_cell.items():
            model.Add(sum(x[e, i] for e in es) <= cap[i])
        for g in sorted(e_.rival_groups):
            for i in range(len(e_.cells)):
                if (g, i) not in e_.existing_groups:
                    b = self.group_in_cell(g, i)
                    if b is not None:
                        terms.append(b)
                        for e in self.by_cell[i]:
                            if g in self.entities[e]["key"][2]:
                                model.Add(x[e, i] <= min(self.entities[e]["count"], cap[i]) * b)
        model.Minimize(cp_model.LinearExpr.Sum(terms))
        better, _ = run(deadline - time.monotonic())
        return better or counts, stages

    def groups_of(self, e):
        return self.entities[e]["key"][2]


def realize(estate, relaxed, counts, deadline, workers):
    """Put the people named in person rules into the relaxed solution's cells so that every rule
    holds, people of a class taking its places there (anonymous members fill the rest). A small
    CP-SAT feasibility model; returns True when it succeeds."""
    named_rules = [r for r in estate.rules if "person" in (r["a"]["kind"], r["b"]["kind"])]
    named = {q["id"] for r in named_rules for q in (r["a"], r["b"]) if q["kind"] == "person"}
    slots = defaultdict(int)  # (class key, cell) -> places
    for (e, i), n in counts.items():
        if n:
            slots[relaxed.entities[e]["key"], i] += n
    key_of, anonymous = {}, defaultdict(int)
    for p in estate.people:
        m = p["member"]
        key_of[m["person"]] = (p["facility"], category(m), tuple(sorted(set(m["groups"]))))
        if m["person"] not in named:
            anonymous[key_of[m["person"]]] += 1
    model = cp_model.CpModel()
    y = {}
    cells_for = defaultdict(list)
    for (key, i), n in slots.items():
        cells_for[key].append(i)
    for person in named:
        if person in key_of:
            for i in cells_for[key_of[person]]:
                y[person, i] = model.NewBoolVar("")
    by_slot = defaultdict(list)
    placed_of = defaultdict(list)
    for (person, i), v in y.items():
        by_slot[key_of[person], i].append(v)
        placed_of[person].append(v)
    for v in placed_of.values():
        model.Add(sum(v) <= 1)
    total = defaultdict(int)
    for (key, i), n in slots.items():
        total[key] += n
        if by_slot[key, i]:
            model.Add(sum(by_slot[key, i]) <= n)
    for key, n in total.items():
        taken = [v for (k, _), vs in by_slot.items() if k == key for v in vs]
        if n > anonymous[key]:
            if not taken:
                return False
            model.Add(sum(taken) >= n - anonymous[key])
    # Who may be in an area: named people by their variables; a group, wherever its classes have
    # places (soundly assuming anonymous members may be anywhere their class has places).
    group_areas = defaultdict(set)
    for (key, i), n in slots.items():
        for g in key[2]:
            for scope, field in SCOPE_FIELD.items():
                group_areas[g, scope].add(estate.cells[i][field])
    y_of = defaultdict(list)
    for (person, i), v in y.items():
        y_of[person].append((i, v))

    def in_area(person, field):
        areas = defaultdict(list)
        for i, v in y_of[person]:
            areas[estate.cells[i][field]].append(v)
        return areas

    for r in named_rules:
        scope, field = r["scope"], SCOPE_FIELD[r["scope"]]
        for mine, theirs in ((r["a"], r["b"]), (r["b"], r["a"])):
            if mine["kind"] != "person" or mine["id"] not in key_of:
                continue
            theirs_near = in_area(theirs["id"], field) if theirs["kind"] == "person" else {}
            for key, vs in in_area(mine["id"], field).items():
                if estate.there(theirs, scope, key) or (theirs["kind"] == "group" and key in group_areas[theirs["id"], scope]):
                    for v in vs:
                        model.Add(v == 0)
                elif key in theirs_near and mine["id"] != theirs["id"]:
                    model.Add(sum(vs) + sum(theirs_near[key]) <= 1)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(1.0, deadline - time.monotonic())
    solver.parameters.num_workers = workers
    return solver.Solve(model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instance")
    parser.add_argument("--time-limit", type=float, default=60.0, help="solver seconds for everything")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    with open(args.instance) as f:
        estate = Estate(json.load(f))
    deadline = time.monotonic() + args.time_limit

    relaxed = Formulation(estate, named=set())
    # A fifth of the time is kept for putting the named people in place.
    counts, stages = relaxed.solve(deadline - args.time_limit / 5, args.workers)
    method = "aggregated, person rules realized"
    if counts is not None and realize(estate, relaxed, counts, deadline, args.workers):
        placed, max_ratio, group_cells = estate.score(counts, relaxed.groups_of)
    else:
        method = "full model"
        named = {r[s]["id"] for r in estate.rules for s in ("a", "b") if r[s]["kind"] == "person"}
        full = Formulation(estate, named)
        counts, more = full.solve(deadline, args.workers)
        stages += more
        if counts is None:
            print(json.dumps({"people": len(estate.people), "status": "UNKNOWN", "stages": stages, "method": method}))
            return 1
        placed, max_ratio, group_cells = estate.score(counts, full.groups_of)
        stages = more
    status = "OPTIMAL" if all(s == "OPTIMAL" for s in stages) else "FEASIBLE"
    print(json.dumps({
        "people": len(estate.people),
        "status": status,
        "placed": placed,
        "max_ratio": max_ratio,
        "group_cells": group_cells,
        "seconds": round(time.monotonic() - started, 2),
        "method": method,
        "stages": stages,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
