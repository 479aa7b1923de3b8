//! The TSIG secret never reaches a log line or an error message.
//!
//! This test installs a global `tracing` subscriber that records every event of the
//! test binary (every level, from every thread, the plugin's runtime included), then
//! drives the plugin through success, authentication failure, a refused connection
//! and configuration errors.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use gordon_plugin_api::testing;
use gordon_plugin_api::tracing::field::{Field, Visit};
use gordon_plugin_api::tracing::span::{Attributes, Id, Record};
use gordon_plugin_api::tracing::{self, Event, Metadata, Subscriber};
use gordon_plugin_rfc2136::Rfc2136;
use gordon_test_servers::bind::{Bind, Key};
use gordon_test_servers::free_port;

use crate::util::{add, publisher, ZONE};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = String::from("span: ");
        span.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = String::from("record: ");
        values.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = format!("{} ", event.metadata().level());
        event.record(&mut Line(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn the_secret_never_reaches_logs_or_errors() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).expect("no other global subscriber");
    let key = Key::random("gordon-key", "hmac-sha256");
    let wrong = Key::random("gordon-key", "hmac-sha256");
    let mut errors: Vec<String> = Vec::new();
    if let Some(bind) = Bind::start(ZONE, std::slice::from_ref(&key)) {
        let good = publisher(&bind, &key, ZONE, "verify = \"query\"\nowner_id = \"g\"");
        good.harness.handle(add("www", "A", &["10.0.0.1"])).unwrap();
        let bad = publisher(&bind, &wrong, ZONE, "");
        errors.push(
            bad.harness
                .handle(add("www", "A", &["10.0.0.2"]))
                .unwrap_err()
                .to_string(),
        );
    }
    let down = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let text = crate::util::config(
        dir.path(),
        &down,
        &key,
        ZONE,
        "retries = 1\nretry_backoff_ms = 1",
    );
    let h = testing::handler::<Rfc2136>(&text).unwrap();
    errors.push(
        h.handle(add("www", "A", &["10.0.0.1"]))
            .unwrap_err()
            .to_string(),
    );
    // A secret that is not base64, from the environment.
    std::env::set_var("GORDON_RFC2136_SECRETS_TEST", format!("{}!", key.secret));
    let env = format!(
        "zone = \"{ZONE}\"\nserver = \"{down}\"\ntsig_secret_env = \"GORDON_RFC2136_SECRETS_TEST\"\ntsig_key_name = \"k\""
    );
    errors.push(testing::validate::<Rfc2136>(&env).unwrap_err().to_string());
    assert!(
        errors.last().unwrap().contains("is not valid base64"),
        "{errors:?}"
    );
    let lines = capture.0.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("Update failed")),
        "the capture works: {lines:#?}"
    );
    for secret in [&key.secret, &wrong.secret] {
        for text in lines.iter().chain(&errors) {
            assert!(!text.contains(secret.as_str()), "secret leaked in {text:?}");
            assert!(
                !text.contains(&secret[..12]),
                "part of the secret leaked in {text:?}"
            );
        }
    }
}
