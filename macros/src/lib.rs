//! The `#[dynamo_test]` attribute macro. Use it through the `dynamo-test`
//! crate, which re-exports it and holds everything it expands into.
//!
//! The macro is thin on purpose, a pipeline of three steps:
//! `parse` reads the attribute (each option kept with its spans),
//! `validate` turns it into a `Config` of plain values (collecting every
//! mistake), `signature` checks the function, and `render` writes a
//! wrapper that calls `dynamo_test::__private`. `entry` runs them. All
//! behaviour lives in the runtime crate, where unit tests reach it.

use proc_macro::TokenStream;

mod config;
mod entry;
mod errors;
mod parse;
mod render;
mod signature;
mod validate;

/// Turns a function into an integration test with reserved ports,
/// injected fixtures, a timeout and guaranteed teardown.
///
/// See the `dynamo-test` crate for the options and examples.
#[proc_macro_attribute]
pub fn dynamo_test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::dynamo_test(args.into(), item.into()).into()
}
