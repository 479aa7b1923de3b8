//! Discovery (Lighthouse's method in Gordon's world): on the DNS side a watch
//! turns each cluster's membership into record sets published through the
//! normal route ([`watch`], [`records`]); on each node `gordon report` runs
//! health checks and reports the node's services up or down ([`report`],
//! [`checks`]).

pub mod checks;
pub mod records;
pub mod report;
pub mod watch;
