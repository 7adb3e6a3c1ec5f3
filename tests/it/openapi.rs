//! The OpenAPI document (`/api/openapi.json`): valid by an OpenAPI validator (PyPI's
//! openapi-spec-validator), listing every route the router declares with its methods, and its
//! report request schemas the same as what the report handlers accept.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use footfall::api::openapi::REPORT_SCHEMAS;
use footfall::model::SiteId;
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

use crate::support::{TestServer, options};

const ADMIN_KEY: &str = "admin-key-for-the-openapi-tests";

async fn serve() -> (tempfile::TempDir, TestServer, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let mut opts = options(dir.path());
    opts.admin_key = Some(ADMIN_KEY.to_owned());
    let srv = TestServer::start(opts).await;
    let doc: Value =
        srv.client.get(format!("{}/api/openapi.json", srv.url)).send().await.expect("GET").json().await.expect("JSON");
    (dir, srv, doc)
}

/// The routes `api::router` declares (`.route("/path", get(…).post(…))`), with their methods.
fn declared_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/api/mod.rs");
    let route = regex::Regex::new(r#"\.route\(\s*"([^"]+)",\s*([^\n]*)"#).expect("regex");
    let method = regex::Regex::new(r"\b(get|post|put|delete|patch)\(").expect("regex");
    let mut routes = BTreeSet::new();
    for c in route.captures_iter(source) {
        for m in method.captures_iter(&c[2]) {
            routes.insert((c[1].to_owned(), m[1].to_owned()));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1_and_lists_every_route() {
    let (dir, srv, doc) = serve().await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);

    // Every route of the router, and nothing else, with the same methods. The dashboard's page
    // and its assets are the only routes left out: they are the product's UI, not its API.
    let declared: BTreeSet<(String, String)> =
        declared_routes().into_iter().filter(|(path, _)| path != "/" && path != "/assets/{*file}").collect();
    assert!(declared.len() >= 25, "the router's routes were not found: {declared:?}");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| item.as_object().expect("item").keys().map(move |m| (path.clone(), m.clone())))
        .filter(|(_, m)| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
        .collect();
    assert_eq!(declared, documented);

    // An OpenAPI validator's verdict, on the document as served.
    let python = crate::support::python_venv("openapi");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("write");
    let out = Command::new(&python)
        .args(["-c", "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(&file)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // The browsable page, from the binary (no CDN): Swagger UI pointed at the document.
    let page = srv.client.get(format!("{}/api/docs/", srv.url)).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("text");
    assert!(html.contains("swagger-ui") && !html.contains("https://"), "{html}");
    let config = srv.client.get(format!("{}/api/docs/swagger-initializer.js", srv.url)).send().await.expect("GET");
    assert!(config.text().await.expect("text").contains("/api/openapi.json"));
    srv.shutdown().await;
}

/// The field names serde's error lists for an unknown field of a `deny_unknown_fields` type.
fn accepted_fields(message: &str) -> BTreeSet<String> {
    let list = message.split("expected one of ").nth(1).unwrap_or_default();
    let name = regex::Regex::new(r"`([a-z_0-9]+)`").expect("regex");
    name.captures_iter(list).map(|c| c[1].to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_request_schemas_are_what_the_report_handlers_accept() {
    let (_dir, srv, doc) = serve().await;
    let schemas = &doc["components"]["schemas"];
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let end = start + chrono::Duration::days(27);
    for (kind, name) in REPORT_SCHEMAS {
        let schema = &schemas[name];
        // Unknown fields are refused by both.
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let documented: BTreeSet<String> =
            schema["properties"].as_object().expect("properties").keys().cloned().collect();
        let report = |body: Value| {
            srv.client.post(format!("{}/api/reports/{kind}", srv.url)).bearer_auth(ADMIN_KEY).json(&body).send()
        };
        let answer: Value = report(json!({"no_such_field": 1})).await.expect("POST").json().await.expect("JSON");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(accepted_fields(message), documented, "{kind}: {message}");

        // A valid request (the bench's) validates against the schema, and the handler runs it.
        let Some(bench) = footfall::reports::registry::find(kind).and_then(|d| d.bench.as_ref()) else {
            continue;
        };
        let mut body = footfall::reports::registry::bench_request("shop", start, end, &(bench.request)(start, end));
        let root = json!({"$ref": format!("#/components/schemas/{name}"), "components": doc["components"]});
        let validator = jsonschema::validator_for(&root).expect("the schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{kind}: {body} is not valid by the schema: {errors:?}");
        let answer = report(body.clone()).await.expect("POST");
        assert_eq!(answer.status(), 200, "{kind}: {body} → {}", answer.text().await.unwrap_or_default());
        // Without each of its fields in turn: the handler misses exactly the schema's required ones.
        let required: BTreeSet<String> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|f| f.as_str().expect("name").to_owned()).collect())
            .unwrap_or_default();
        for field in body.as_object().expect("object").keys() {
            let mut without = body.clone();
            without.as_object_mut().expect("object").remove(field);
            let answer: Value = report(without).await.expect("POST").json().await.expect("JSON");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(
                message.contains(&format!("missing field `{field}`")),
                required.contains(field),
                "{kind}.{field}: {answer}"
            );
        }
        // And a request the schema refuses (a field of the wrong type), the handler refuses too.
        body["site"] = json!(7);
        assert!(!validator.is_valid(&body), "{kind}");
        assert_eq!(report(body).await.expect("POST").status(), 400, "{kind}");
    }
    srv.shutdown().await;
}

#[test]
fn the_test_reads_the_routes_the_router_declares() {
    // A route written over two lines or through a helper would escape declared_routes().
    let source = include_str!("../../src/api/mod.rs");
    let calls = source.matches(".route(").count();
    let found: BTreeSet<String> = declared_routes().into_iter().map(|(p, _)| p).collect();
    assert_eq!(found.len(), calls, "{found:?}");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/mod.rs").exists());
}
