//! Helpers for the end-to-end tests: start the real `sluiced` binary on a free port.
