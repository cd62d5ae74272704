//! The call to the runtime's runner, which builds the context, runs setup
//! (injection), the body and teardown, under the timeout if there is one.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path, ReturnType};

use super::body_ident;
use super::params::{call_args, injected_vars, injections};
use crate::config::Config;
use crate::signature::{Param, TestFn};

/// `run_async(..)` or `run_sync(..)`, with or without a timeout, given the
/// rendered `TestConfig`.
pub fn call(config: &Config, test: &TestFn, test_config: TokenStream) -> TokenStream {
    let krate = &config.krate;
    let has_timeout = config.timeout.is_some();
    let output = &test.item.sig.output;
    // One case's values (rstest's parameters) move into the closure that
    // runs the body: a test with a timeout runs it on another thread.
    let capture = test.rstest.then(|| quote!(move));
    if test.is_async() {
        run_async(
            krate,
            &test.params,
            test_config,
            has_timeout,
            output,
            capture,
        )
    } else {
        run_sync(
            krate,
            &test.params,
            test_config,
            has_timeout,
            output,
            capture,
        )
    }
}

/// An async body runs inside the setup future, on the test's runtime.
fn run_async(
    krate: &Path,
    params: &[Param],
    config: TokenStream,
    has_timeout: bool,
    output: &ReturnType,
    capture: Option<TokenStream>,
) -> TokenStream {
    let injections = injections(krate, params);
    let args = call_args(params);
    let body = body_ident();
    let outcome = outcome_of(krate, output, quote!(#body(#(#args),*).await));
    let runner = runner("run_async", has_timeout);
    quote! {
        #krate::__private::#runner(#config, #capture |__dynamo_ctx: #krate::__private::TestContext| async move {
            #injections
            #krate::__private::enter_body(&__dynamo_ctx);
            ::core::result::Result::<_, #krate::__private::Error>::Ok(#outcome)
        })
    }
}

/// A plain body runs after setup, off the runtime: setup hands it the
/// injected values (and the context, which holds what they need) as a tuple.
fn run_sync(
    krate: &Path,
    params: &[Param],
    config: TokenStream,
    has_timeout: bool,
    output: &ReturnType,
    capture: Option<TokenStream>,
) -> TokenStream {
    let injections = injections(krate, params);
    let args = call_args(params);
    let (muts, vars): (Vec<_>, Vec<_>) = injected_vars(params).into_iter().unzip();
    let body = body_ident();
    let outcome = outcome_of(krate, output, quote!(#body(#(#args),*)));
    let runner = runner("run_sync", has_timeout);
    quote! {
        #krate::__private::#runner(
            #config,
            |__dynamo_ctx: #krate::__private::TestContext| async move {
                #injections
                #krate::__private::enter_body(&__dynamo_ctx);
                ::core::result::Result::<_, #krate::__private::Error>::Ok(((#(#vars,)*), __dynamo_ctx))
            },
            #capture |((#(#muts #vars,)*), __dynamo_ctx)| {
                // Keeps the context alive (and so its reservations) during the body.
                let _ = &__dynamo_ctx;
                #outcome
            },
        )
    }
}

/// The runner function: `<base>`, or `<base>_with_timeout`, which runs the
/// test on a supervised thread.
fn runner(base: &str, has_timeout: bool) -> Ident {
    match has_timeout {
        true => format_ident!("{base}_with_timeout"),
        false => format_ident!("{base}"),
    }
}

/// `TestResult::into_outcome(value)`, spanned at the return type so that
/// an unsupported type is reported there.
fn outcome_of(krate: &Path, output: &ReturnType, value: TokenStream) -> TokenStream {
    let span = match output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => Span::call_site(),
    };
    // The argument must carry the span too: rustc reports an unmet bound there.
    let result = Ident::new("__dynamo_result", span);
    quote_spanned! {span=> {
        let #result = #value;
        #krate::__private::TestResult::into_outcome(#result)
    }}
}
