//! The route plan: for each source, the handlers its messages visit, in order.
//!
//! `[core.route]` maps a phase to the next one. Following it from a runnable's start
//! phase gives a fixed list of stages, computed once at start-up; at run time a
//! message moves down the list without any lookup. The walk ends at `cleanup` or at a
//! phase with no next phase. A route to a phase no active handler serves is an error
//! (the original sent such messages to cleanup, where their source acknowledged
//! them as if published), and so is a loop.

use std::collections::BTreeMap;

use gordon_plugin_api::Phase;

/// One step of a route: the phase and the index of the handler that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// The phase a message is in while the handler runs.
    pub phase: Phase,
    /// Index into the service's handler list.
    pub handler: usize,
}

/// The stages of one source's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The handlers, in route order.
    pub stages: Vec<Stage>,
}

/// Walks `route` from `start`. `handlers` gives each handler's phase, by index.
///
/// # Errors
/// A loop in the route (a phase visited twice), naming the phases, or a phase no
/// handler serves, naming the route entry that leads there.
pub fn plan(
    start: &str,
    route: &BTreeMap<String, String>,
    handlers: &[&str],
) -> Result<Plan, String> {
    let mut stages = Vec::new();
    let mut visited = vec![start.to_owned()];
    let mut phase = start;
    while let Some(next) = route.get(phase) {
        if next == Phase::CLEANUP.as_str() {
            break;
        }
        if visited.iter().any(|v| v == next) {
            return Err(format!(
                "core.route loops: {} -> {next}",
                visited.join(" -> ")
            ));
        }
        visited.push(next.clone());
        match handlers.iter().position(|h| h == next) {
            Some(handler) => stages.push(Stage {
                phase: Phase::intern(next),
                handler,
            }),
            None => {
                let served: Vec<&str> = handlers.to_vec();
                return Err(format!(
                    "core.route: `{phase} = \"{next}\"` sends messages to phase `{next}`, which no active handler serves (phases served: {}); they would never be published",
                    if served.is_empty() { "none".to_owned() } else { served.join(", ") }
                ));
            }
        }
        phase = next;
    }
    Ok(Plan { stages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(route: &str, handlers: &[&str], expect: &str) {
        let route: BTreeMap<String, String> = route
            .split_whitespace()
            .map(|pair| {
                let (a, b) = pair.split_once('>').unwrap();
                (a.to_owned(), b.to_owned())
            })
            .collect();
        let got = match plan("consume", &route, handlers) {
            Ok(p) => p
                .stages
                .iter()
                .map(|st| format!("{}#{}", st.phase, st.handler))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => e,
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn gordon_route() {
        check(
            "consume>enrich enrich>publish publish>cleanup",
            &["publish", "enrich"],
            "enrich#1 publish#0",
        );
    }

    #[test]
    fn route_without_enrich() {
        check("consume>publish publish>cleanup", &["publish"], "publish#0");
    }

    #[test]
    fn missing_next_phase_ends_the_route() {
        check("consume>enrich", &["enrich"], "enrich#0");
        check("", &["enrich"], "");
    }

    #[test]
    fn a_phase_no_handler_serves_is_an_error() {
        check(
            "consume>enrich enrich>publsh publsh>cleanup",
            &["enrich", "publish"],
            "core.route: `enrich = \"publsh\"` sends messages to phase `publsh`, which no active handler serves (phases served: enrich, publish); they would never be published",
        );
    }

    #[test]
    fn loops_are_refused() {
        check(
            "consume>a a>b b>a",
            &["a", "b"],
            "core.route loops: consume -> a -> b -> a",
        );
    }
}
