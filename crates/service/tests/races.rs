//! Races between real connections, on whichever backend `CUSTODIA_TEST_DB` names: two clerks
//! recording at the same instant, each through connections of its own as two servers would.
//! Exactly one may win; the other is refused by the rule, never by a database error.

mod common;

use common::*;

use custodia_service as service;

use chrono::Duration;
use domain::separation::CapacityLine;
use service::custody::{MovementKind, MovementRequest};
use service::housing::PolicyRequest;
use service::{Context, Service, ServiceResult};
use store::Tx;

/// A command one clerk runs through a service of their own.
type Command<'a, T> = &'a (dyn Fn(&Service<store::Database>) -> ServiceResult<T> + Sync);

/// Run both commands at once, each with its own service (and so its own connections), started
/// together behind a barrier; their results in order.
fn at_once<T: Send>(f: &Fixture, commands: [Command<'_, T>; 2]) -> Vec<ServiceResult<T>> {
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        let handles: Vec<_> = commands
            .into_iter()
            .map(|command| {
                let (db, barrier) = (&f.db, &barrier);
                scope.spawn(move || {
                    let service = Service::new(db.open());
                    barrier.wait();
                    command(&service)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

fn movement(person: &str, kind: MovementKind, ctx: &Context) -> MovementRequest {
    MovementRequest { person: person.into(), kind, at: Some(ctx.now), note: None }
}

/// The one refusal among two results, after checking the other succeeded.
fn one_won<T: std::fmt::Debug>(results: Vec<ServiceResult<T>>) -> &'static str {
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "exactly one wins: {results:?}");
    refused_rule(results.into_iter().find(|r| r.is_err()).unwrap()).0
}

#[test]
fn two_placements_into_the_last_bed_at_the_capacity_line_place_one_twenty_times_over() {
    let f = fixture();
    let line = PolicyRequest { capacity_line: Some(CapacityLine::Beds), adult_age: None };
    f.service.set_housing_policy(&f.ctx, "NORTE", &line).unwrap();
    // A-1 has two beds; one stays taken, so each round races for the other.
    let resident = f.admit("NORTE", "Rodrigo", "Rivas", "2026-03-01T08:00:00Z").person;
    f.mv(&resident, place("A-1", None), NOW);
    for round in 0..20 {
        let ctx = Context::new("test", t(NOW) + Duration::hours(round + 1));
        let [a, b] = [0, 1].map(|i| f.admit("NORTE", &format!("P{round}x{i}"), "Rivas", "2026-03-01T08:00:00Z").person);
        let results = at_once(
            &f,
            [&|s| s.record_movement(&ctx, &movement(&a, place("A-1", None), &ctx)), &|s| {
                s.record_movement(&ctx, &movement(&b, place("A-1", None), &ctx))
            }],
        );
        let winner = if results[0].is_ok() { a.clone() } else { b.clone() };
        assert_eq!(one_won(results), "housing.capacity_line", "round {round}");
        let later = Context::new("test", ctx.now + Duration::minutes(30));
        f.service.record_movement(&later, &movement(&winner, release(), &later)).unwrap();
    }
    assert!(f.verify().broken.is_none());
}

#[test]
fn two_movements_holding_the_same_version_of_a_record_record_one() {
    let f = fixture();
    let person = f.admit("NORTE", "Ana", "Rivas", "2026-03-01T08:00:00Z").person;
    f.mv(&person, place("A-1", None), NOW);
    for round in 0..10 {
        let ctx = Context::new("test", t(NOW) + Duration::hours(round + 1));
        let version = f
            .service
            .batch(|tx| {
                let id = tx.person_id(&person)?.expect("on record");
                Ok(tx.latest_movement(id)?)
            })
            .unwrap();
        // Two clerks read the same record and each move the person somewhere else.
        let move_with = |cell: &'static str| {
            let (ctx, person) = (&ctx, &person);
            move |s: &Service<store::Database>| {
                let request = movement(person, move_to(cell, None), ctx);
                s.batch(|tx| {
                    service::custody::expect_version(tx, person, version)?;
                    service::custody::record_movement_in(tx, ctx, &request)
                })
            }
        };
        let (to_a2, to_solo) = (move_with("A-2"), move_with("A-SOLO"));
        let results = at_once(&f, [&to_a2, &to_solo]);
        assert_eq!(one_won(results), "record.stale", "round {round}");
        let back = Context::new("test", ctx.now + Duration::minutes(30));
        f.service.record_movement(&back, &movement(&person, move_to("A-1", None), &back)).unwrap();
    }
    assert!(f.verify().broken.is_none());
}

#[test]
fn two_admissions_with_one_document_at_once_admit_once_ten_times_over() {
    let f = fixture();
    for round in 0..10 {
        let mut value = admission_json("NORTE", "Ana", "Rivas", "2026-03-01T08:00:00Z");
        value["identity"]["documents"][0]["number"] = format!("0555555{round:02}").into();
        let (north, mut south) = (value.clone(), value);
        south["facility"] = "SUR".into();
        let (north, south) = (request(north), request(south));
        let results = at_once(&f, [&|s| s.admit(&f.ctx, &north), &|s| s.admit(&f.ctx, &south)]);
        assert_eq!(one_won(results), "custody.already_in_custody", "round {round}");
    }
    assert!(f.verify().broken.is_none());
}
