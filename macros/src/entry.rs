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
/// function that takes injected parameters) and rstest's (rstest would
/// report again what is reported, or make tests of it), and allowed to be
/// unused.
fn fallback(mut func: ItemFn) -> TokenStream {
    func.attrs
        .retain(|a| a.path().segments.last().is_none_or(|s| s.ident != "test"));
    signature::strip_rstest(&mut func);
    quote!(#[allow(dead_code)] #func)
}

fn with_error(err: syn::Error, fallback: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens as _;
    use syn::{Item, LitStr};

    /// The `compile_error!` messages, and the rest of the output.
    fn split(output: TokenStream) -> (Vec<String>, String) {
        let file: syn::File = match syn::parse2(output) {
            Ok(file) => file,
            Err(e) => panic!("not a file: {e}"),
        };
        let (errors, rest): (Vec<Item>, Vec<Item>) = file
            .items
            .into_iter()
            .partition(|item| matches!(item, Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "compile_error")));
        let messages = errors
            .iter()
            .filter_map(|item| match item {
                Item::Macro(m) => m.mac.parse_body::<LitStr>().ok().map(|s| s.value()),
                _ => None,
            })
            .collect();
        let rest = rest
            .iter()
            .map(|i| i.to_token_stream().to_string())
            .collect();
        (messages, rest)
    }

    #[test]
    fn options_and_signature_errors_come_together_with_a_fallback() {
        let (errors, rest) = split(dynamo_test(
            quote!(retries = 3, timeout = "1d"),
            quote!(
                #[test]
                #[ignore]
                async fn t(p: impl Sized) {
                    body()
                }
            ),
        ));
        let heads: Vec<&str> = errors
            .iter()
            .map(|e| e.split("; ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            heads,
            [
                "unknown option `retries`",
                "bad timeout \"1d\": unknown unit `d` (use ms, s, m or h)",
                "remove `#[test]`: `#[dynamo_test]` already makes this function a test (and builds its runtime)",
                "`impl Trait` parameters make the test generic",
            ]
        );
        // The function as written, without its test attribute: it is
        // neither run nor the cause of more errors.
        let fallback = quote!(
            #[allow(dead_code)]
            #[ignore]
            async fn t(p: impl Sized) {
                body()
            }
        );
        assert_eq!(rest, fallback.to_string());
    }

    #[test]
    fn a_syntax_error_in_the_options_still_checks_the_signature() {
        let (errors, _) = split(dynamo_test(
            quote!("30s"),
            quote!(
                fn t<T>() {}
            ),
        ));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].starts_with("expected options like"));
        assert!(errors[1].starts_with("generic test functions are not supported"));
    }

    #[test]
    fn not_a_function_is_left_as_it_is() {
        let (errors, rest) = split(dynamo_test(
            quote!(),
            quote!(
                struct S;
            ),
        ));
        assert_eq!(
            errors,
            ["#[dynamo_test] goes on a test function (`fn` or `async fn`)"]
        );
        assert_eq!(
            rest,
            quote!(
                struct S;
            )
            .to_string()
        );
    }
}
