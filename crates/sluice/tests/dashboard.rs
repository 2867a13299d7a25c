//! The Grafana dashboard is valid JSON and queries only metrics that `docs/metrics.md`
//! documents (and `/metrics` serves: `metrics.rs` checks the documented ones), so a renamed
//! metric cannot leave a dashboard panel silently empty.

use std::collections::BTreeSet;
use std::path::Path;

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Metric names in a PromQL expression: `sluice_*` and `process_*` identifiers, with the
/// histogram suffixes mapped back to the family name.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = &expr[at..];
        if starts_word && (rest.starts_with("sluice_") || rest.starts_with("process_")) {
            let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..len];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| f.ends_with("_seconds")))
                .unwrap_or(name);
            names.push(family.to_string());
            at += len;
        } else {
            at += 1;
        }
    }
    names
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_queries_only_documented_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("dashboards/grafana/sluice.json")).expect("the dashboard is valid JSON");
    let docs = repo_file("docs/metrics.md");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 20, "only {} queries found in the dashboard", exprs.len());
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let undocumented: Vec<&String> = used.iter().filter(|name| !docs.contains(&format!("`{name}`"))).collect();
    assert!(
        undocumented.is_empty(),
        "the dashboard queries metrics docs/metrics.md does not document: {undocumented:?}"
    );
    for name in ["sluice_partition_messages_in_total", "sluice_group_lag", "sluice_storage_failing"] {
        assert!(used.contains(name), "the dashboard does not chart {name}");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names("histogram_quantile(0.99, sum by (le) (rate(sluice_request_duration_seconds_bucket[5m])))"),
        vec!["sluice_request_duration_seconds"]
    );
    assert_eq!(metric_names("rate(process_cpu_seconds_total[1m]) + my_sluice_x"), vec!["process_cpu_seconds_total"]);
}
