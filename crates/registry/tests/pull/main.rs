//! Integration tests of the pull client: a scripted fake registry for the awkward cases, and
//! Debian's real `docker-registry` filled by skopeo.
#![allow(clippy::unwrap_used)]

#[path = "../../../testkit/src/fakereg.rs"]
#[allow(dead_code)]
mod fakereg;
#[path = "../../../testkit/src/registry.rs"]
#[allow(dead_code)]
mod local;

mod fake;
mod registry_real;
mod support;
