//! The bench's baseline: an axum server whose only route answers 204 to any POST, on the
//! same runtime settings as `footfall serve`. `cargo run --release --example bare_server -- ADDR`

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route("/api/event", post(|_body: axum::body::Bytes| async { StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare server on http://{addr}");
    axum::serve(listener, app).await
}
