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

use syn::{Attribute, Meta, PatType, Type};

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

/// Whether the code at a span, `source`, is rstest's attribute: the
/// tokens spanned there were written by rstest's expansion.
pub fn wrote(source: &str) -> bool {
    source.contains("rstest")
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
