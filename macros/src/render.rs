//! Step 3, rendering: the test wrapper, from the validated [`Config`] and
//! the checked [`TestFn`] alone.
//!
//! ```text
//! #[dynamo_test(timeout = "30s")]          #[::core::prelude::v1::test]
//! async fn t(api: u16, ctx: &TestContext)  fn t() {
//! { body }                          ==>        async fn __dynamo_test_body(api: u16, ctx: &TestContext) { body }
//!                                             run_async_with_timeout(config, |ctx| async move {
//!                                                 let a0 = inject::<u16>(&ctx, "api").await?;
//!                                                 let a1 = inject::<TestContext>(&ctx, "ctx").await?;
//!                                                 enter_body(&ctx);
//!                                                 Ok(__dynamo_test_body(a0, &a1).await.into_outcome())
//!                                             })
//!                                         }
//! ```
//! Generated code names only `<crate>::__private::*`, where `<crate>` is
//! `::dynamo_test` or the `crate = "..."` option.

mod params;
mod runner;
mod test_config;

#[cfg(test)]
mod tests;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, ItemFn};

use crate::config::Config;
use crate::signature::TestFn;

pub fn render(config: &Config, test: &TestFn) -> TokenStream {
    let func = &test.item;
    let name = &func.sig.ident;
    let body_fn = body_fn(func);
    let run = runner::call(config, test, test_config::render(config, name));
    let attrs = &func.attrs;
    let vis = &func.vis;
    // Under `cfg(test)` the wrapper is a test. Elsewhere (a doctest, a
    // trybuild case) it stays a type-checked, unused function rather than
    // vanishing with `#[test]`, so type errors are reported everywhere.
    quote! {
        #(#attrs)*
        #[cfg_attr(test, ::core::prelude::v1::test)]
        #[cfg_attr(not(test), allow(dead_code))]
        #vis fn #name() {
            #body_fn
            #run
        }
    }
}

/// The user's function, renamed, inside the wrapper.
fn body_fn(func: &ItemFn) -> TokenStream {
    let mut sig = func.sig.clone();
    sig.ident = body_ident();
    let block = &func.block;
    quote!(#sig #block)
}

fn body_ident() -> Ident {
    Ident::new("__dynamo_test_body", Span::call_site())
}
