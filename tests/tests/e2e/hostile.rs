//! The hostile-client suite: for each way a client could make the broker spend memory or
//! work out of proportion to its request, or erase data it must keep, a request built to
//! do the most damage. Each test asserts that the broker's peak resident set grows by at
//! most [`sluice_tests::hostile::allowed_growth`] of the frame, that a well-behaved client
//! is answered promptly meanwhile, and that nothing acknowledged or committed is lost,
//! across a restart where the finding was about durable state.

mod groups;
mod internal_topics;
mod list_offsets;
mod metadata;
mod pinned_frames;
mod storage;
