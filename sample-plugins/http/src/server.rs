//! The three routes of `http.events` on hyper's HTTP/1.1 server, with the
//! connection limit, the timeouts and the bearer token around them.
//!
//! hyper does the protocol: keep-alive, `Content-Length` and chunked bodies (a
//! request whose `Content-Length` headers disagree, or that is otherwise malformed,
//! gets `400` from hyper itself; repeated headers that agree, which hyper accepts,
//! are refused here, see `repeated_length`), `Expect: 100-continue` (answered when the body is
//! first read, so a request refused before its body — `401`, `413` — never gets the
//! `100`), `HEAD`. This module adds what hyper leaves to its user: how long a client
//! may take (see `conns`), how many connections may be open, and who may post.

use std::convert::Infallible;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gordon_plugin_api::event_json::parse_events;
use gordon_plugin_api::tokio::net::{TcpListener, TcpStream};
use gordon_plugin_api::tokio::time::Instant;
use gordon_plugin_api::{tokio, tracing, MsgId, Phase, RunContext};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};

use crate::auth::{Token, Verdict};
use crate::conns::{Connections, Limits, Order, Slot, Tracked, Wait};
use crate::tracker::Tracker;

/// The largest request head (hyper's read buffer); larger heads get `431`.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Linux and macOS `errno`s for "no file descriptor left".
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// State shared by every connection.
pub struct Shared {
    pub tracker: Tracker,
    pub max_body: usize,
    pub max_age: Option<Duration>,
    pub start_phase: Phase,
    pub token: Option<Token>,
    pub limits: Limits,
}

type Reply = Response<Full<Bytes>>;

/// Accepts connections until shutdown is requested.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, ctx: RunContext) {
    let ctx = Arc::new(ctx);
    let conns = Arc::new(Connections::new(shared.limits.max_connections));
    let mut warned: Option<Instant> = None;
    let mut log_failure = |what: &str, error: &std::io::Error| {
        // One line per 10 s at most: a flood must not flood the log too.
        if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
            warned = Some(Instant::now());
            tracing::warn!(%error, "{what}");
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.requested() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => match conns.admit() {
                Ok(slot) => {
                    let (shared, ctx, conns) =
                        (Arc::clone(&shared), Arc::clone(&ctx), Arc::clone(&conns));
                    tokio::spawn(async move {
                        connection(stream, &slot, shared, ctx).await;
                        conns.remove(&slot);
                    });
                }
                Err(_) => refuse(&stream),
            },
            Err(error) if matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) => {
                // Out of descriptors (`max_connections` is above what the process may
                // open): free one held by a client, then accept again.
                conns.evict_one();
                log_failure(
                    "Accept failed: no file descriptor left; lower `max_connections` \
                     or raise the process's limit (ulimit -n).",
                    &error,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(error) => {
                log_failure("Accept failed.", &error);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    conns.drain_all();
}

/// Every open connection is being handled: answer `503` and close, without waiting.
fn refuse(stream: &TcpStream) {
    let body = "{\"error\":\"too many connections; retry later\"}\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Nonblocking: what does not fit in the socket buffer is not waited for.
    let _ = stream.try_write(reply.as_bytes());
}

/// Serves one connection until it closes, its client overstays a timeout, it is
/// closed to make room for another, or the service stops.
async fn connection(
    stream: TcpStream,
    slot: &Arc<Slot>,
    shared: Arc<Shared>,
    ctx: Arc<RunContext>,
) {
    let _ = stream.set_nodelay(true);
    let limits = shared.limits;
    let service = {
        let slot = Arc::clone(slot);
        service_fn(move |req| {
            let (slot, shared, ctx) = (Arc::clone(&slot), Arc::clone(&shared), Arc::clone(&ctx));
            async move {
                slot.set(Wait::Handling);
                let reply = route(req, &slot, &shared, &ctx).await;
                slot.set(Wait::Idle);
                Ok::<_, Infallible>(reply)
            }
        })
    };
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(slot)));
    let mut conn = pin!(http1::Builder::new()
        .timer(TokioTimer::new())
        // The head, body and idle timeouts are the slot's (see `conns`).
        .header_read_timeout(None)
        .half_close(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service));
    let mut draining = false;
    loop {
        match slot.order() {
            Order::Close => {
                tracing::debug!("Connection closed to make room for another (`max_connections`).");
                return;
            }
            Order::Drain if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            Order::Drain | Order::Continue => {}
        }
        let deadline = slot.deadline(&limits);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(error) = done {
                    tracing::debug!(%error, "Connection closed with an error.");
                }
                return;
            }
            // Evicted, draining, or waiting for something else now: look again.
            () = slot.changed() => {}
            () = tokio::time::sleep_until(deadline) => {
                if let Some(key) = slot.overdue(&limits) {
                    tracing::debug!("Connection closed: the client was silent past `{key}`.");
                    return;
                }
            }
        }
    }
}

async fn route(req: Request<Incoming>, slot: &Slot, shared: &Shared, ctx: &RunContext) -> Reply {
    // Routing looks at the path alone: a query string changes nothing.
    let path = req.uri().path().to_owned();
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    match (req.method(), path.as_str()) {
        (&Method::POST, "/events") => {
            if let Some(refused) = unauthorized(&req, shared) {
                return refused;
            }
            if slot.take_repeated_length() {
                return repeated_length();
            }
            match read_body(req, slot, shared).await {
                Ok(body) => post_events(&body, shared, ctx).await,
                Err(refused) => refused,
            }
        }
        (_, "/healthz") if read => healthz(),
        (_, path) if read && path.starts_with("/events/") => {
            if let Some(refused) = unauthorized(&req, shared) {
                return refused;
            }
            let id = &path["/events/".len()..];
            match MsgId::parse(id).and_then(|id| shared.tracker.status(id)) {
                Some(doc) => reply(StatusCode::OK, doc),
                None => error(StatusCode::NOT_FOUND, format!("no message {id}")),
            }
        }
        (_, "/events") => {
            let mut refused = error(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            refused
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            refused
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The answer to a request with more than one `Content-Length` header: `400`. RFC 9112 §6.3
/// lets a server take repeated identical values as one, and hyper does; but a proxy
/// in front that handles them otherwise (first wins, or one of them rewritten)
/// would frame the request differently from us, which is how requests are
/// smuggled. The connection is closed after the answer, as the framing is in doubt.
/// hyper keeps only one of them, so the count comes from the bytes
/// (`conns::Tracked`).
fn repeated_length() -> Reply {
    tracing::debug!("Refused a request with repeated Content-Length headers.");
    closing(error(
        StatusCode::BAD_REQUEST,
        "repeated Content-Length headers; send exactly one",
    ))
}

/// `401` unless the request carries the token (when one is configured).
fn unauthorized(req: &Request<Incoming>, shared: &Shared) -> Option<Reply> {
    let token = shared.token.as_ref()?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let (message, challenge) = match token.check(given) {
        Verdict::Allowed => return None,
        Verdict::Missing => ("missing bearer token", "Bearer realm=\"gordon\""),
        Verdict::Invalid => (
            "invalid bearer token",
            "Bearer realm=\"gordon\", error=\"invalid_token\"",
        ),
    };
    tracing::debug!("Refused a request: {message}.");
    let mut refused = error(StatusCode::UNAUTHORIZED, message);
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    Some(refused)
}

/// The whole body, sized or chunked, within `max_body_bytes` and `body_timeout`.
async fn read_body(req: Request<Incoming>, slot: &Slot, shared: &Shared) -> Result<Bytes, Reply> {
    let max = shared.max_body;
    let too_large = || {
        closing(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {max} bytes"),
        ))
    };
    // A `Content-Length` over the limit is refused before the body is read (and
    // before a `100 Continue` is sent).
    if req.body().size_hint().lower() > max as u64 {
        return Err(too_large());
    }
    slot.set(Wait::Body);
    let timeout = shared.limits.body;
    let read = tokio::time::timeout(timeout, Limited::new(req.into_body(), max).collect()).await;
    slot.set(Wait::Handling);
    match read {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(closing(error(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {e}"),
        ))),
        Err(_) => Err(closing(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (`body_timeout`)",
                timeout.as_secs()
            ),
        ))),
    }
}

async fn post_events(body: &[u8], shared: &Shared, ctx: &RunContext) -> Reply {
    if ctx.events.is_closed() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; not accepting events",
        );
    }
    let msgs = match parse_events(body, shared.start_phase, shared.max_age) {
        Ok(msgs) => msgs,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    let ids: Vec<MsgId> = msgs.iter().map(|m| m.msg_id()).collect();
    // Track before sending: the route may finish a message before `send` returns.
    shared.tracker.accept(&ids);
    match ctx.events.send_batch(msgs).await {
        Ok(()) => reply(
            StatusCode::ACCEPTED,
            json!({"accepted": ids.len(), "ids": ids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        ),
        Err(closed) => {
            let lost: Vec<MsgId> = closed.0.iter().map(|m| m.msg_id()).collect();
            shared.tracker.forget(&lost);
            if lost.len() == ids.len() {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting down; not accepting events",
                )
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "shutting down; only some events were accepted",
                           "accepted_ids": ids.iter().filter(|i| !lost.contains(i)).map(ToString::to_string).collect::<Vec<_>>()}),
                )
            }
        }
    }
}

/// `ok` while the host is healthy; 503 with the host's problems (a failed plugin, a
/// handler past its deadline) otherwise. Never asks for the token.
fn healthz() -> Reply {
    match gordon_plugin_api::host_health() {
        Some(h) if !h.healthy => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "problems": h.problems}),
        ),
        _ => reply(StatusCode::OK, json!("ok")),
    }
}

/// A JSON reply (one line).
fn reply(status: StatusCode, body: Value) -> Reply {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    reply(status, json!({"error": message.into()}))
}

/// The reply closes the connection: what is left of the request is not read.
fn closing(mut resp: Reply) -> Reply {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
