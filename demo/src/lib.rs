//! `citytwin`: the whole City Twin demonstration on one machine, with one command.
//!
//! It starts the real binaries as child processes: the `cloud` with its sled store in the data folder, then
//! loads the Changsha demonstration city into it unless it is there already ([`city`]), then one `edge`
//! agent per district simulating that district's sensors (sped up), then the `viewer`: a window when there
//! is a display, headless PNG snapshots otherwise. Ctrl-C (or SIGTERM) stops the parts in order, each with
//! SIGTERM: viewer, edges (which send what they can and keep the rest in their outboxes), then the cloud.
//! A second run resumes from the stored state. [`plan`] decides what runs; [`part`] runs it.

pub mod city;
pub mod part;
pub mod plan;
