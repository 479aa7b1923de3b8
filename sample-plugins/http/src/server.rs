//! A small HTTP/1.1 server (keep-alive, `Content-Length` bodies) for the three
//! routes of `http.events`.

use std::sync::Arc;
use std::time::Duration;

use gordon_plugin_api::event_json::parse_events;
use gordon_plugin_api::tokio::io::{AsyncReadExt, AsyncWriteExt};
use gordon_plugin_api::tokio::net::{TcpListener, TcpStream};
use gordon_plugin_api::{tokio, tracing, MsgId, Phase, RunContext};
use serde_json::{json, Value};

use crate::tracker::Tracker;

/// State shared by every connection.
pub struct Shared {
    pub tracker: Tracker,
    pub max_body: usize,
    pub max_age: Option<Duration>,
    pub start_phase: Phase,
}

/// Accepts connections until shutdown is requested.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, ctx: RunContext) {
    let ctx = Arc::new(ctx);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.requested() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let (shared, ctx) = (Arc::clone(&shared), Arc::clone(&ctx));
                tokio::spawn(async move {
                    if let Err(error) = connection(stream, &shared, &ctx).await {
                        tracing::debug!(%error, "Connection closed with an error.");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    close: bool,
}

struct Response {
    status: u16,
    body: Value,
}

impl Response {
    fn new(status: u16, body: Value) -> Self {
        Response { status, body }
    }
    fn error(status: u16, message: impl Into<String>) -> Self {
        Response {
            status,
            body: json!({"error": message.into()}),
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    shared: &Shared,
    ctx: &RunContext,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let req = match read_request(&mut stream, &mut buf, shared.max_body).await {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(resp) => {
                write_response(&mut stream, &resp, true).await?;
                return Ok(());
            }
        };
        let resp = route(&req, shared, ctx).await;
        write_response(&mut stream, &resp, req.close).await?;
        if req.close {
            return Ok(());
        }
    }
}

/// Reads one request; `Ok(None)` at a clean end of the connection.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    max_body: usize,
) -> Result<Option<Request>, Response> {
    let io_err = |e: std::io::Error| Response::error(400, format!("read error: {e}"));
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed
            .parse(buf)
            .map_err(|e| Response::error(400, format!("bad request: {e}")))?;
        if let httparse::Status::Complete(head_len) = status {
            let method = parsed.method.unwrap_or("").to_owned();
            let path = parsed.path.unwrap_or("").to_owned();
            let mut length = 0usize;
            let mut close = parsed.version == Some(0);
            for h in parsed.headers.iter() {
                let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = value
                        .parse()
                        .map_err(|_| Response::error(400, "bad Content-Length"))?;
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(Response::error(411, "send the body with a Content-Length"));
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
            if length > max_body {
                return Err(Response::error(
                    413,
                    format!("body larger than {max_body} bytes"),
                ));
            }
            while buf.len() < head_len + length {
                if stream.read_buf(buf).await.map_err(io_err)? == 0 {
                    return Err(Response::error(400, "connection closed mid-body"));
                }
            }
            let body = buf[head_len..head_len + length].to_vec();
            buf.drain(..head_len + length);
            return Ok(Some(Request {
                method,
                path,
                body,
                close,
            }));
        }
        if buf.len() > 64 * 1024 {
            return Err(Response::error(431, "request head too large"));
        }
        if stream.read_buf(buf).await.map_err(io_err)? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(Response::error(400, "connection closed mid-request"))
            };
        }
    }
}

async fn route(req: &Request, shared: &Shared, ctx: &RunContext) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/events") => post_events(&req.body, shared, ctx).await,
        ("GET", "/healthz") => healthz(),
        ("GET", path) if path.starts_with("/events/") => {
            let id = &path["/events/".len()..];
            match MsgId::parse(id).and_then(|id| shared.tracker.status(id)) {
                Some(doc) => Response::new(200, doc),
                None => Response::error(404, format!("no message {id}")),
            }
        }
        (_, "/events") => Response::error(405, "use POST"),
        _ => Response::error(404, "not found"),
    }
}

async fn post_events(body: &[u8], shared: &Shared, ctx: &RunContext) -> Response {
    if ctx.events.is_closed() {
        return Response::error(503, "shutting down; not accepting events");
    }
    let msgs = match parse_events(body, shared.start_phase, shared.max_age) {
        Ok(msgs) => msgs,
        Err(e) => return Response::error(400, e.0),
    };
    let ids: Vec<MsgId> = msgs.iter().map(|m| m.msg_id()).collect();
    // Track before sending: the route may finish a message before `send` returns.
    shared.tracker.accept(&ids);
    match ctx.events.send_batch(msgs).await {
        Ok(()) => Response::new(
            202,
            json!({"accepted": ids.len(), "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        ),
        Err(closed) => {
            let lost: Vec<MsgId> = closed.0.iter().map(|m| m.msg_id()).collect();
            shared.tracker.forget(&lost);
            if lost.len() == ids.len() {
                Response::error(503, "shutting down; not accepting events")
            } else {
                Response::new(
                    503,
                    json!({"error": "shutting down; only some events were accepted",
                           "accepted_ids": ids.iter().filter(|i| !lost.contains(i)).map(ToString::to_string).collect::<Vec<_>>()}),
                )
            }
        }
    }
}

async fn write_response(
    stream: &mut TcpStream,
    resp: &Response,
    close: bool,
) -> std::io::Result<()> {
    let body = resp.body.to_string();
    let reason = match resp.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        resp.status,
        body.len() + 1,
        if close { "connection: close\r\n" } else { "" }
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.write_all(b"\n").await?;
    stream.flush().await
}

/// `ok` while the host is healthy; 503 with the host's problems (a failed plugin, a
/// handler past its deadline) otherwise.
fn healthz() -> Response {
    match gordon_plugin_api::host_health() {
        Some(h) if !h.healthy => {
            Response::new(503, json!({"status": "unhealthy", "problems": h.problems}))
        }
        _ => Response::new(200, json!("ok")),
    }
}
