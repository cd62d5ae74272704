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
//!
//! With `#[rstest]` below `#[dynamo_test]`, the wrapper is no test of its
//! own: rstest makes one of each case, calling the wrapper with the case's
//! values, so the wrapper keeps rstest's attributes and parameters and
//! moves the values into the body:
//!
//! ```text
//! #[dynamo_test]                           #[rstest]
//! #[rstest]                                #[case(1)]
//! #[case(1)]                         ==>   fn t(#[case] n: u32) {
//! async fn t(#[case] n: u32, api: u16)         async fn __dynamo_test_body(n: u32, api: u16) { body }
//! { body }                                     run_async(config /* case: true */, move |ctx| async move {
//!                                                  let a1 = inject::<u16>(&ctx, "api").await?;
//!                                                  ..  __dynamo_test_body(n, a1).await ..
//!                                              })
//!                                          }
//! ```

mod params;
mod runner;
mod test_config;

#[cfg(test)]
mod tests;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{FnArg, Ident};

use crate::config::Config;
use crate::signature::{Source, TestFn};

pub fn render(config: &Config, test: &TestFn) -> TokenStream {
    let func = &test.item;
    let name = &func.sig.ident;
    let body_fn = body_fn(test);
    let test_config = test_config::render(config, name, test.rstest, test.should_panic());
    let run = runner::call(config, test, test_config);
    let attrs = &func.attrs;
    let vis = &func.vis;
    if test.rstest {
        // rstest writes the tests (under `cfg(test)` only, like `#[test]`).
        let params = case_params(test);
        return quote! {
            #(#attrs)*
            #vis fn #name(#(#params),*) {
                #body_fn
                #run
            }
        };
    }
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

/// The user's function, renamed, inside the wrapper; rstest's
/// parameters lose their attributes (rstest reads them on the wrapper).
fn body_fn(test: &TestFn) -> TokenStream {
    let func = &test.item;
    let mut sig = func.sig.clone();
    sig.ident = body_ident();
    for (input, param) in sig.inputs.iter_mut().zip(&test.params) {
        if let (FnArg::Typed(typed), Source::Rstest(_)) = (input, &param.source) {
            typed.attrs.clear();
        }
    }
    let block = &func.block;
    quote!(#sig #block)
}

/// The wrapper's parameters under rstest: `#[case] n: u32`, one for each
/// parameter rstest gives a value to.
fn case_params(test: &TestFn) -> Vec<TokenStream> {
    test.params
        .iter()
        .filter_map(|p| match &p.source {
            Source::Rstest(case) => {
                let (attrs, ident, ty) = (&case.attrs, &case.ident, &case.ty);
                Some(quote!(#(#attrs)* #ident: #ty))
            }
            Source::Injected { .. } => None,
        })
        .collect()
}

fn body_ident() -> Ident {
    Ident::new("__dynamo_test_body", Span::call_site())
}
