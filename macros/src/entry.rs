//! The pipeline, parse -> validate -> check -> render, and what the user
//! sees when it fails: every error found, plus a harmless fallback (the
//! function, untouched and not a test), so that no cascade of follow-up
//! errors (an unresolved function, a missing test) buries them.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use crate::errors::join;
use crate::parse::RawOptions;
use crate::render::render;
use crate::signature;

pub fn dynamo_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "#[dynamo_test] goes on a test function (`fn` or `async fn`)",
            );
            return with_error(err, item);
        }
    };
    match expand(args, &func) {
        Ok(tokens) => tokens,
        Err(err) => with_error(err, fallback(func)),
    }
}

/// The options and the signature are checked independently, so a mistake
/// in each is reported in one compile.
fn expand(args: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let is_async = func.sig.asyncness.is_some();
    let config = RawOptions::parse(args).and_then(|raw| raw.build(is_async));
    let (config, test) = join(config, signature::check(func))?;
    Ok(render(&config, &test))
}

/// The function as written, minus any test attribute (it would run a
/// function that takes injected parameters), and allowed to be unused.
fn fallback(mut func: ItemFn) -> TokenStream {
    func.attrs
        .retain(|a| a.path().segments.last().is_none_or(|s| s.ident != "test"));
    quote!(#[allow(dead_code)] #func)
}

fn with_error(err: syn::Error, fallback: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #fallback)
}
