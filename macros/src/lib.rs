//! The `#[dynamo_test]` attribute macro. Use it through the `dynamo-test`
//! crate, which re-exports it and holds everything it expands into.
//!
//! The macro is thin on purpose: [`options`] parses the attribute (keeping
//! every option's span for errors), [`signature`] checks the function, and
//! [`expand`] writes a wrapper that calls `dynamo_test::__private`. All
//! behaviour lives in the runtime crate, where unit tests reach it.

use proc_macro::TokenStream;

mod expand;
mod options;
mod signature;

/// Turns a function into an integration test with reserved ports,
/// injected fixtures, a timeout and guaranteed teardown.
///
/// See the `dynamo-test` crate for the options and examples.
#[proc_macro_attribute]
pub fn dynamo_test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::dynamo_test(args.into(), item.into()).into()
}
