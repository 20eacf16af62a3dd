//! The OpenAPI document as served. utoipa derives each operation from its handler; what holds for
//! every route is added here once, from the same rules the server applies, so that the document
//! says what the server does: errors are `application/problem+json`; the statuses the middleware
//! and the extractors answer (401, 403, 404, 413, 415, 422) are listed on every operation they can
//! come from; the bearer token and the session cookie are security schemes; paging limits and
//! instants carry their bounds and format.

use serde_json::{json, Map, Value};
use utoipa::openapi::OpenApi;

use crate::access::{rule_for, Access, SESSION_COOKIE};
use crate::request::{DEFAULT_LIMIT, MAX_LIMIT};

const PROBLEM: &str = "application/problem+json";

/// The document with every operation finished.
pub(crate) fn finish(document: OpenApi) -> OpenApi {
    let mut document = serde_json::to_value(&document).expect("an OpenAPI document serialises");
    add_security_schemes(&mut document);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, operation) in item.iter_mut() {
                if let Ok(method) = method.to_uppercase().parse() {
                    if let Some(access) = rule_for(&method, path) {
                        finish_operation(&method, access, operation);
                    }
                }
            }
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for schema in schemas.values_mut() {
            open_all_of(schema);
        }
        // `PeoplePage` is untagged: an empty page is both kinds, which `oneOf` forbids.
        if let Some(page) = schemas.get_mut("PeoplePage").and_then(Value::as_object_mut) {
            if let Some(kinds) = page.remove("oneOf") {
                page.insert("anyOf".into(), kinds);
            }
        }
        // A component that is one part of an `allOf` (a flattened struct) is checked alone against
        // the whole object, so it must not refuse the properties the other parts bring.
        let mut parts = Vec::new();
        for schema in schemas.values() {
            all_of_refs(schema, &mut parts);
        }
        while let Some(name) = parts.pop() {
            if let Some(Value::Object(part)) = schemas.get_mut(&name) {
                if part.get("additionalProperties") == Some(&Value::Bool(false)) {
                    part.remove("additionalProperties");
                    all_of_refs(&Value::Object(part.clone()), &mut parts);
                }
            }
        }
    }
    serde_json::from_value(document).expect("the finished document is still an OpenAPI document")
}

fn add_security_schemes(document: &mut Value) {
    let components =
        document.as_object_mut().expect("a document is an object").entry("components").or_insert_with(|| json!({}));
    components["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `custodia token create`, sent as `Authorization: Bearer TOKEN`."
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": SESSION_COOKIE,
            "description": "The browser session set by `POST /api/v1/session`. Writes with it must come from \
                            this site (`Origin`, `Sec-Fetch-Site`)."
        }
    });
    document["security"] = json!([{ "bearer": [] }, { "session": [] }]);
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn finish_operation(method: &axum::http::Method, access: Access, operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else { return };
    let parameters: Vec<Value> = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_body = operation.contains_key("requestBody");
    let writes = !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    if access == Access::Public {
        operation.insert("security".into(), json!([]));
    }
    if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
        parameters.iter_mut().for_each(bound_parameter);
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({})).as_object_mut().expect("responses");
    // Errors are problem documents, whatever utoipa wrote for them.
    for (status, response) in responses.iter_mut() {
        if status.starts_with(['4', '5']) {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                if let Some(schema) = content.remove("application/json") {
                    content.insert(PROBLEM.into(), schema);
                }
            }
        }
    }
    let mut add = |status: &str, description: &str| {
        responses.entry(status).or_insert_with(|| problem(description));
    };
    let in_path = |kind: Option<&str>| {
        parameters
            .iter()
            .any(|p| p["in"] == "path" && kind.is_none_or(|kind| p["schema"]["type"].as_str() == Some(kind)))
    };
    if access != Access::Public {
        add("401", "Not logged in, or the token or session is not valid (or has expired or been revoked).");
        add("403", "The caller's role may not call this route.");
    }
    if writes {
        add("403", "A write with the session cookie from another site (`Origin` or `Sec-Fetch-Site`).");
        add("409", "A rule refused the command (`rule` names it), or it conflicts with what is on record.");
        add("415", "The body is not sent as `application/json`.");
    }
    if parameters.iter().any(|p| p["in"] == "header" && p["name"] == "If-Match") {
        add("412", "`If-Match` is not the record's current `ETag`: someone recorded something since it was read.");
    }
    if has_body {
        add("400", "The body is not JSON.");
        add("413", "The body is larger than 256 KiB.");
        add("422", "A field is missing, of the wrong type, out of range, unknown or given twice; each is named.");
    }
    if parameters.iter().any(|p| p["in"] == "query") {
        add("422", "A query parameter does not fit; it is named.");
    }
    if in_path(None) {
        add("404", "No such record, or one outside the caller's facilities (answered alike).");
    }
    if in_path(Some("integer")) {
        add("400", "A path segment that should be a number is not one.");
    }
    if let Some(unauthenticated) = responses.get_mut("401").and_then(Value::as_object_mut) {
        unauthenticated.insert(
            "headers".into(),
            json!({ "WWW-Authenticate": {
                "description": "How to authenticate: `Bearer realm=\"custodia\"`.",
                "schema": { "type": "string" }
            }}),
        );
    }
}

/// Limits the handlers enforce, written into the parameters they apply to.
fn bound_parameter(parameter: &mut Value) {
    if parameter["in"] == "header" && parameter["name"] == "Idempotency-Key" {
        // What `request::idempotent` accepts: 1 to 200 visible characters, inner spaces allowed.
        // Spaces and tabs around the value are allowed because HTTP drops them before the server
        // sees the value, so the length is counted inside the pattern, without them.
        parameter["schema"] = json!({
            "type": "string", "pattern": "^[ \\t]*[!-~](?:[ -~]{0,198}[!-~])?[ \\t]*$"
        });
    }
    if parameter["in"] == "header" && parameter["name"] == "If-Match" {
        // The tags `request::if_match` reads; any other text is answered 400 as malformed.
        parameter["schema"] = json!({ "type": "string", "pattern": "^(\\*|(W/)?\"v[0-9]+\")$" });
    }
    if parameter["in"] != "query" {
        return;
    }
    match parameter["name"].as_str() {
        Some("limit") => {
            parameter["schema"] = json!({
                "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT
            });
        }
        Some("at" | "since") => {
            parameter["schema"] = json!({ "type": "string", "format": "date-time" });
        }
        _ => {}
    }
}

/// `additionalProperties: false` beside or inside an `allOf` refuses the properties the other
/// parts bring (each part is checked alone), so no object could satisfy it: the flattened
/// `PersonView` refused the server's own answer. The parts' own `properties` still say what is
/// known; the server, not the document, refuses unknown fields.
fn open_all_of(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(parts) = object.get_mut("allOf").and_then(Value::as_array_mut) {
                for part in parts.iter_mut() {
                    if let Some(part) = part.as_object_mut() {
                        remove_closed(part);
                    }
                }
                remove_closed(object);
            }
            for value in object.values_mut() {
                open_all_of(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(open_all_of),
        _ => {}
    }
}

/// Components named by a `$ref` that is a part of an `allOf`, anywhere in a schema.
fn all_of_refs(schema: &Value, found: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for part in object.get("allOf").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = part["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                    found.push(name.to_string());
                }
            }
            object.values().for_each(|value| all_of_refs(value, found));
        }
        Value::Array(items) => items.iter().for_each(|item| all_of_refs(item, found)),
        _ => {}
    }
}

fn remove_closed(object: &mut Map<String, Value>) {
    if object.get("additionalProperties") == Some(&Value::Bool(false)) {
        object.remove("additionalProperties");
    }
}
