//! City Twin integration and end-to-end tests: one test binary, one module per area.
//!
//! - `api`: the gRPC API of an in-process cloud on 127.0.0.1:0 with a temp sled dir.
//! - `process`: the real `cloud` binary as a process: kill -9 crash recovery, SIGTERM, config errors.
//! - `demo`: cloud, edges and viewer as processes together, and `citytwin`, the one-command demonstration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e {
    mod api;
    mod bad_input;
    mod city;
    mod demo;
    mod edge;
    mod fault_proxy;
    mod process;
    mod viewer;
    mod watch;
    mod watchdog;
}
