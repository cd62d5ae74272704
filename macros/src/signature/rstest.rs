//! A function that carries `#[rstest]` too: rstest's part of it.
//!
//! `#[dynamo_test]` is written above `#[rstest]`, so it expands first and
//! sees the function as written. It hands rstest a plain `fn` whose
//! parameters are the ones rstest gives values to (those with an rstest
//! attribute: `#[case]`, `#[values(..)]`, `#[from(..)]`, ...); rstest then
//! writes one `#[test]` per case, and each call runs the harness once.
//!
//! What cannot work that way is refused here, at its span: rstest's own
//! timeout and test attribute (the harness has its own), `#[future]` and
//! `#[awt]` (rstest sees a plain `fn`, which cannot await), the
//! parameter list of `#[rstest(..)]` (every parameter without an rstest
//! attribute is injected), and `#[rstest]` written above `#[dynamo_test]`.

use syn::{Attribute, FnArg, ItemFn, Meta, PatType, Type};

use super::{plain_name, CaseParam, Param, Source};
use crate::errors::{all, join};

/// The message for `#[rstest]` written above `#[dynamo_test]`.
pub const ABOVE: &str = "write `#[dynamo_test(..)]` above `#[rstest]`, not below it: \
     rstest, expanded first, has already made a `#[test]` of each case and taken the parameters \
     the harness injects for its own fixtures";

/// `#[rstest]`, `#[rstest::rstest]`, `#[rstest(..)]`.
pub fn is_rstest(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "rstest")
}

/// Whether the code at a span, `source`, is rstest's attribute
/// (`#[rstest]`, `#[rstest::rstest]`, `#[rstest(..)]`): the tokens spanned
/// there were written by rstest's expansion.
pub fn wrote(source: &str) -> bool {
    source
        .trim()
        .strip_prefix("#[")
        .map(|inside| inside.trim_start().trim_start_matches("::"))
        .is_some_and(|path| path.starts_with("rstest"))
}

/// rstest's attributes of the function that conflict with the harness.
/// Without `#[rstest]` they are not rstest's, and the compiler judges them.
pub fn check_fn_attributes(attrs: &[Attribute]) -> syn::Result<()> {
    if !attrs.iter().any(is_rstest) {
        return Ok(());
    }
    all(attrs.iter().map(check_fn_attribute)).map(drop)
}

fn check_fn_attribute(attr: &Attribute) -> syn::Result<()> {
    let message = if is_rstest(attr) {
        match &attr.meta {
            Meta::List(list) => {
                return Err(syn::Error::new_spanned(
                    &list.tokens,
                    "write the cases on the parameters (`#[case]` with `#[case(..)]` on the function, \
                     or `#[values(..)]`), not in `#[rstest(..)]`: under `#[dynamo_test]`, a parameter \
                     without an rstest attribute is injected by the harness",
                ));
            }
            _ => return Ok(()),
        }
    } else if attr.path().is_ident("timeout") {
        "remove rstest's `#[timeout]`: write `timeout = \"..\"` in `#[dynamo_test(..)]`, \
         which fails the case at the limit after tearing it down"
    } else if attr.path().is_ident("test_attr") {
        "remove `#[test_attr]`: `#[dynamo_test]` builds the test's runtime, \
         and rstest gives each case a plain `#[test]`"
    } else if attr.path().is_ident("awt") {
        AWAIT
    } else {
        return Ok(());
    };
    Err(syn::Error::new_spanned(attr, message))
}

/// Why rstest cannot await under `#[dynamo_test]`.
const AWAIT: &str = "rstest's `#[awt]` and `#[future]` do not work under `#[dynamo_test]`: \
     rstest sees a plain `fn` (the harness runs the async body), which cannot await; \
     make the value a `dynamo_test::Inject` fixture (async setup, with teardown) \
     or compute it in the body";

/// Whether rstest gives the parameter its value: it carries an attribute
/// that is not one of the compiler's own (lints, `cfg`, `doc`).
pub fn is_case_param(typed: &PatType) -> bool {
    typed.attrs.iter().any(|a| !is_builtin(a))
}

fn is_builtin(attr: &Attribute) -> bool {
    const BUILTIN: [&str; 8] = [
        "cfg", "cfg_attr", "allow", "warn", "deny", "forbid", "expect", "doc",
    ];
    let path = attr.path();
    BUILTIN.iter().any(|b| path.is_ident(b))
        || path.segments.first().is_some_and(|s| {
            path.segments.len() > 1 && (s.ident == "rustfmt" || s.ident == "clippy")
        })
}

/// Removes rstest's attributes from `func`, and every attribute of its
/// parameters but the compiler's own: what is left compiles without
/// rstest (the fallback of a function that has an error).
pub fn strip(func: &mut ItemFn) {
    let has_rstest = func.attrs.iter().any(is_rstest);
    // Its own attributes count only on a function with `#[rstest]`.
    let own = ["timeout", "test_attr", "awt", "trace"];
    func.attrs.retain(|a| {
        let first = a.path().segments.first().map(|s| s.ident.to_string());
        let rstests = is_rstest(a)
            || first.as_deref() == Some("case")
            || (has_rstest && own.iter().any(|o| a.path().is_ident(o)));
        !rstests
    });
    for input in &mut func.sig.inputs {
        if let FnArg::Typed(typed) = input {
            typed.attrs.retain(is_builtin);
        }
    }
}

/// A parameter rstest gives a value to, checked.
pub fn case_param(typed: &PatType) -> syn::Result<Param> {
    let awaits = typed
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("future") || a.path().is_ident("awt"))
        .map(|a| Err::<(), _>(syn::Error::new_spanned(a, AWAIT)));
    let name = plain_name(typed).ok_or_else(|| {
        syn::Error::new_spanned(
            &typed.pat,
            "an rstest parameter binds a plain name (e.g. `#[case] plane: Plane`): \
             rstest names the cases after it, and the body receives it by it; destructure it in the body",
        )
    });
    let ty = match &*typed.ty {
        Type::ImplTrait(t) => Err(syn::Error::new_spanned(
            t,
            "`impl Trait` case parameters make the test generic; \
             name a concrete type (e.g. `&'static str` for `impl AsRef<str>`)",
        )),
        ty => Ok(ty.clone()),
    };
    let (_, (ident, ty)) = join(all(awaits), join(name, ty))?;
    Ok(Param {
        name: ident.to_string(),
        source: Source::Rstest(CaseParam {
            attrs: typed.attrs.clone(),
            ident: ident.clone(),
            ty,
        }),
    })
}

/// An rstest parameter attribute on a function without `#[rstest]`.
pub fn without_rstest(typed: &PatType) -> syn::Error {
    let attr = typed.attrs.iter().find(|a| !is_builtin(a));
    let shown = attr
        .map(|a| {
            let path: Vec<String> = a
                .path()
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            format!("`#[{}]`", path.join("::"))
        })
        .unwrap_or_else(|| "this attribute".to_string());
    let message = format!(
        "{shown} on a parameter is rstest's: write `#[rstest]` below `#[dynamo_test(..)]` \
         (the parameters without one are injected by the harness)"
    );
    match attr {
        Some(a) => syn::Error::new_spanned(a, message),
        None => syn::Error::new_spanned(typed, message),
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens as _;
    use syn::parse_quote;

    use super::super::{check, test_attribute_message, Source};
    use super::*;

    fn messages(item: ItemFn) -> Vec<String> {
        match check(&item) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The start of each message, up to its first `:`.
    fn heads(item: ItemFn) -> Vec<String> {
        let head = |e: &String| e.split(':').next().unwrap_or_default().to_string();
        messages(item).iter().map(head).collect()
    }

    #[test]
    fn rstest_gives_the_parameters_with_its_attributes_and_the_harness_the_others() {
        let test = match check(&parse_quote! {
            #[rstest]
            #[case::one(1, "a")]
            async fn t(
                #[case] n: u32,
                ctx: &TestContext,
                #[case] mut s: &'static str,
                #[allow(unused)] api: u16,
                #[values(Plane::Nats, Plane::Tcp)] plane: Plane,
                #[from(my_fixture)] f: Fixture,
            ) {}
        }) {
            Ok(test) => test,
            Err(e) => panic!("unexpected error: {e}"),
        };
        assert!(test.rstest);
        let got: Vec<String> = test
            .params
            .iter()
            .map(|p| match &p.source {
                Source::Injected { ty, passing } => {
                    format!("inject {} {} {passing:?}", p.name, ty.to_token_stream())
                }
                Source::Rstest(case) => {
                    let attrs: Vec<String> = case
                        .attrs
                        .iter()
                        .map(|a| a.to_token_stream().to_string())
                        .collect();
                    format!(
                        "rstest {} {} {}",
                        case.ident,
                        case.ty.to_token_stream(),
                        attrs.join(" ")
                    )
                }
            })
            .collect();
        assert_eq!(
            got,
            [
                "rstest n u32 # [case]",
                "inject ctx TestContext Ref",
                "rstest s & 'static str # [case]",
                "inject api u16 Value",
                "rstest plane Plane # [values (Plane :: Nats , Plane :: Tcp)]",
                "rstest f Fixture # [from (my_fixture)]",
            ]
        );
    }

    #[test]
    fn what_rstest_offers_that_cannot_work_is_refused() {
        let item: ItemFn = parse_quote! {
            #[rstest]
            #[timeout(Duration::from_secs(1))]
            #[test_attr(tokio::test)]
            #[awt]
            #[case(1)]
            async fn t(#[case] n: u32, #[future] later: u32, #[future(awt)] again: u32, #[case] _: u32, #[case] (a, b): (u8, u8), #[case] s: impl AsRef<str>) {}
        };
        assert_eq!(
            heads(item),
            [
                "remove rstest's `#[timeout]`",
                "remove `#[test_attr]`",
                "rstest's `#[awt]` and `#[future]` do not work under `#[dynamo_test]`",
                "rstest's `#[awt]` and `#[future]` do not work under `#[dynamo_test]`",
                "rstest's `#[awt]` and `#[future]` do not work under `#[dynamo_test]`",
                "an rstest parameter binds a plain name (e.g. `#[case] plane",
                "an rstest parameter binds a plain name (e.g. `#[case] plane",
                "`impl Trait` case parameters make the test generic; name a concrete type (e.g. `&'static str` for `impl AsRef<str>`)",
            ]
        );
        let listed: ItemFn = parse_quote! {
            #[rstest(n, case(1))]
            fn t(n: u32) {}
        };
        assert_eq!(heads(listed), ["write the cases on the parameters (`#[case]` with `#[case(..)]` on the function, or `#[values(..)]`), not in `#[rstest(..)]`"]);
    }

    #[test]
    fn rstest_attributes_without_rstest_say_so() {
        let item: ItemFn = parse_quote! {
            #[case(1)]
            fn t(#[case] n: u32, #[values(1, 2)] m: u32, #[allow(unused)] api: u16) {}
        };
        assert_eq!(
            messages(item),
            [
                "`#[case]` on a parameter is rstest's: write `#[rstest]` below `#[dynamo_test(..)]` (the parameters without one are injected by the harness)",
                "`#[values]` on a parameter is rstest's: write `#[rstest]` below `#[dynamo_test(..)]` (the parameters without one are injected by the harness)",
            ]
        );
        // `#[timeout]` and the like are rstest's only beside `#[rstest]`.
        assert!(check(&parse_quote!(
            #[timeout(1)]
            fn t() {}
        ))
        .is_ok());
    }

    #[test]
    fn a_test_attribute_written_by_rstest_asks_for_the_other_order() {
        let written = ["test".to_string()];
        assert_eq!(test_attribute_message(&written, Some("#[rstest]")), ABOVE);
        assert_eq!(
            test_attribute_message(&written, Some("#[rstest::rstest]")),
            ABOVE
        );
        for source in [Some("#[test]"), Some("#[my_rstest_helpers::test]"), None] {
            assert_eq!(
                test_attribute_message(&written, source),
                "remove `#[test]`: `#[dynamo_test]` already makes this function a test (and builds its runtime)"
            );
        }
    }

    #[test]
    fn the_fallback_keeps_nothing_of_rstest() {
        let mut func: ItemFn = parse_quote! {
            /// Docs.
            #[rstest]
            #[case::one(1)]
            #[timeout(1)]
            #[trace]
            #[ignore]
            fn t(#[case] n: u32, #[allow(unused)] #[from(f)] api: u16) {}
        };
        strip(&mut func);
        let expected: ItemFn = parse_quote! {
            /// Docs.
            #[ignore]
            fn t(n: u32, #[allow(unused)] api: u16) {}
        };
        assert_eq!(
            func.to_token_stream().to_string(),
            expected.to_token_stream().to_string()
        );
    }
}
