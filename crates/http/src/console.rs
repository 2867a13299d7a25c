//! The web console: static files compiled into the binary (no CDN, nothing fetched at run time)
//! and served at `/` (the page) and `/console/<asset>` (its scripts and styles). The console
//! talks only to the admin JSON API under `/api/`.
//!
//! Caching: every answer carries a strong ETag (a hash of the embedded bytes) and
//! `Cache-Control: no-cache`, so a browser revalidates on each load and gets a cheap 304 until
//! the binary is upgraded — never a stale script against a newer API.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: its URL name, MIME type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The page itself, answered at `/` (and at `/console/index.html`).
const INDEX: Asset = Asset { name: "index.html", content_type: HTML, body: include_bytes!("../console/index.html") };

/// Everything under `/console/`; the page's modules import each other by these names.
const ASSETS: &[Asset] = &[
    INDEX,
    Asset { name: "style.css", content_type: CSS, body: include_bytes!("../console/style.css") },
    Asset { name: "favicon.svg", content_type: SVG, body: include_bytes!("../console/favicon.svg") },
    Asset { name: "app.js", content_type: JS, body: include_bytes!("../console/app.js") },
    Asset { name: "api.js", content_type: JS, body: include_bytes!("../console/api.js") },
    Asset { name: "dom.js", content_type: JS, body: include_bytes!("../console/dom.js") },
    Asset { name: "chart.js", content_type: JS, body: include_bytes!("../console/chart.js") },
    Asset { name: "overview.js", content_type: JS, body: include_bytes!("../console/overview.js") },
    Asset { name: "topics.js", content_type: JS, body: include_bytes!("../console/topics.js") },
    Asset { name: "topic.js", content_type: JS, body: include_bytes!("../console/topic.js") },
    Asset { name: "groups.js", content_type: JS, body: include_bytes!("../console/groups.js") },
    Asset { name: "nsq.js", content_type: JS, body: include_bytes!("../console/nsq.js") },
    Asset { name: "mqtt.js", content_type: JS, body: include_bytes!("../console/mqtt.js") },
    Asset { name: "clients.js", content_type: JS, body: include_bytes!("../console/clients.js") },
    Asset { name: "cluster.js", content_type: JS, body: include_bytes!("../console/cluster.js") },
    Asset { name: "elections.js", content_type: JS, body: include_bytes!("../console/elections.js") },
];

/// `GET /`: the console page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /console/{asset}`: one embedded file, 404 for any other name (no file system access).
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such console asset")
            .into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = etag(asset.body);
    let cache = [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")), (header::ETAG, etag.clone())];
    if request.get_all(header::IF_NONE_MATCH).iter().any(|v| matches_etag(v, &etag)) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (StatusCode::OK, cache, headers, asset.body).into_response()
}

/// A strong ETag from a 64-bit FNV-1a hash of the bytes: the files are small and fixed at build
/// time, so this is about collisions between versions, not adversaries.
fn etag(body: &[u8]) -> HeaderValue {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    HeaderValue::from_str(&format!("\"{hash:016x}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `If-None-Match` may list several tags or be `*`.
fn matches_etag(value: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_unique_name_and_content() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(ASSETS[i + 1..].iter().all(|b| b.name != a.name), "{} listed twice", a.name);
        }
    }

    #[test]
    fn etag_matches_itself_lists_and_star_only() {
        let tag = etag(b"console");
        assert!(matches_etag(&tag, &tag));
        let listed = HeaderValue::from_str(&format!("\"x\", {}", tag.to_str().unwrap_or(""))).unwrap_or(tag.clone());
        assert!(matches_etag(&listed, &tag));
        assert!(matches_etag(&HeaderValue::from_static("*"), &tag));
        assert!(!matches_etag(&etag(b"other"), &tag));
    }
}
