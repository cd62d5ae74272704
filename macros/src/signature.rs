//! The signature check: the test function, and how each parameter receives
//! its injected value.
//!
//! What can be injected is the compiler's call (through the runtime's
//! `Inject` trait); this module only rejects shapes no trait could fix:
//! generics, `self`, destructuring patterns, impossible return types, and a
//! second test attribute. Each check is independent, so all their errors
//! are reported together.
//!
//! A function that also carries `#[rstest]` (written below
//! `#[dynamo_test]`) is one of rstest's: rstest makes a test of each of its
//! cases, and gives the value of each parameter that carries an rstest
//! attribute (`#[case]`, `#[values(..)]`, `#[from(..)]`, ...); the harness
//! injects the others. See [`rstest`].

mod rstest;

use proc_macro2::Ident;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Generics, ItemFn, Pat, PatType, ReturnType, Signature, Type};

use crate::errors::{all, join};

pub use rstest::strip as strip_rstest;

/// A test function whose signature passed the check.
pub struct TestFn {
    /// The function as written.
    pub item: ItemFn,
    /// Its parameters, in order.
    pub params: Vec<Param>,
    /// It carries `#[rstest]`: each call of the function is one case.
    pub rstest: bool,
}

impl TestFn {
    pub fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }

    /// It carries `#[should_panic]`: its failure is its pass.
    pub fn should_panic(&self) -> bool {
        self.item
            .attrs
            .iter()
            .any(|a| a.path().is_ident("should_panic"))
    }
}

/// One parameter of the test function.
pub struct Param {
    /// The name used in logs and the port table (`_<index>` for `_`).
    pub name: String,
    pub source: Source,
}

/// Where a parameter's value comes from.
pub enum Source {
    /// The harness injects it.
    Injected {
        /// The type that is injected (`T` for `&T` and `&mut T`).
        ty: Type,
        passing: Passing,
    },
    /// rstest gives it (one case's value): it stays a parameter of the
    /// function rstest sees, and moves into the body.
    Rstest(CaseParam),
}

/// A parameter rstest gives a value to.
pub struct CaseParam {
    /// Its rstest attributes (`#[case]`, `#[values(..)]`, ...), for rstest.
    pub attrs: Vec<Attribute>,
    pub ident: Ident,
    pub ty: Type,
}

/// How a parameter receives its injected value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passing {
    /// `x: T`: the value itself.
    Value,
    /// `x: &T`: a reference to a value that lives for the whole test.
    Ref,
    /// `x: &mut T`.
    RefMut,
}

/// Checks `item`; every problem found is in the error.
pub fn check(item: &ItemFn) -> syn::Result<TestFn> {
    let sig = &item.sig;
    let is_rstest = item.attrs.iter().any(rstest::is_rstest);
    let shape = all([
        check_attributes(&item.attrs),
        rstest::check_fn_attributes(&item.attrs),
        check_generics(&sig.generics),
        check_variadic(sig),
        check_return_type(&sig.output),
    ]);
    let params = all(sig
        .inputs
        .iter()
        .enumerate()
        .map(|(i, arg)| param(i, arg, is_rstest)));
    let (_, params) = join(shape, params)?;
    Ok(TestFn {
        item: item.clone(),
        params,
        rstest: is_rstest,
    })
}

fn check_attributes(attrs: &[Attribute]) -> syn::Result<()> {
    all(attrs.iter().map(check_attribute)).map(drop)
}

/// A second test attribute would run the function twice, or run the
/// wrapper with no arguments to give it.
fn check_attribute(attr: &Attribute) -> syn::Result<()> {
    let path = attr.path();
    let is_test = path
        .segments
        .last()
        .is_some_and(|s| s.ident == "test" || s.ident == "dynamo_test");
    if !is_test {
        return Ok(());
    }
    let written: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    // The attribute's tokens say `test`; where they stand in the source
    // tells whether another macro wrote them (rstest gives each case its
    // `#[test]`, spanned at `#[rstest]`).
    let source = attr.pound_token.span.source_text();
    Err(syn::Error::new_spanned(
        attr,
        test_attribute_message(&written, source.as_deref()),
    ))
}

/// What to say about test attribute `written` (its path's segments), whose
/// first token stands on `source` in the code (`None`: not known).
fn test_attribute_message(written: &[String], source: Option<&str>) -> String {
    if source.is_some_and(rstest::wrote) {
        return rstest::ABOVE.to_string();
    }
    // `#[tokio::test]` placed above us has already expanded into `core::prelude::v1::test`.
    let shown = match written.first().map(String::as_str) {
        Some("core" | "std") => {
            "the other test attribute (`#[test]`, `#[tokio::test]`)".to_string()
        }
        _ => format!("`#[{}]`", written.join("::")),
    };
    format!("remove {shown}: `#[dynamo_test]` already makes this function a test (and builds its runtime)")
}

/// libtest calls a test with no type arguments.
fn check_generics(generics: &Generics) -> syn::Result<()> {
    if generics.params.is_empty() && generics.where_clause.is_none() {
        return Ok(());
    }
    let message =
        "generic test functions are not supported: libtest calls a test without type arguments; \
                   write a non-generic test that calls a generic helper";
    Err(match &generics.where_clause {
        Some(w) if generics.params.is_empty() => syn::Error::new_spanned(w, message),
        _ => syn::Error::new_spanned(&generics.params, message),
    })
}

fn check_variadic(sig: &Signature) -> syn::Result<()> {
    match &sig.variadic {
        Some(variadic) => Err(syn::Error::new_spanned(
            variadic,
            "variadic test functions are not supported",
        )),
        None => Ok(()),
    }
}

fn check_return_type(output: &ReturnType) -> syn::Result<()> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(());
    };
    let supported = match &**ty {
        Type::Tuple(t) => t.elems.is_empty(),
        // `Result<(), E>`, a `Result` alias, `()` via an alias: the runtime's
        // `TestResult` trait has the final word.
        Type::Path(_) | Type::Paren(_) | Type::Group(_) => true,
        _ => false,
    };
    if supported {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            ty,
            "unsupported return type: a #[dynamo_test] function returns `()` or `Result<(), E>` where `E: Debug`",
        ))
    }
}

fn param(index: usize, arg: &FnArg, is_rstest: bool) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Receiver(r) => {
            return Err(syn::Error::new(
                r.span(),
                "a test function cannot take `self`; make it a free function",
            ));
        }
        FnArg::Typed(t) => t,
    };
    if rstest::is_case_param(typed) {
        return match is_rstest {
            true => rstest::case_param(typed),
            false => Err(rstest::without_rstest(typed)),
        };
    }
    let (name, (ty, passing)) = join(param_name(index, &typed.pat), injected(&typed.ty))?;
    Ok(Param {
        name,
        source: Source::Injected { ty, passing },
    })
}

/// `typed`'s binding, when it is a plain name (`x`, `mut x`).
fn plain_name(typed: &PatType) -> Option<&Ident> {
    match &*typed.pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => Some(&ident.ident),
        _ => None,
    }
}

/// The name a parameter is logged under.
fn param_name(index: usize, pat: &Pat) -> syn::Result<String> {
    match pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
            Ok(ident.ident.to_string())
        }
        Pat::Wild(_) => Ok(format!("_{index}")),
        other => Err(syn::Error::new_spanned(
            other,
            "unsupported parameter pattern: bind a plain name (e.g. `ports: ServicePorts`) and destructure it in the body",
        )),
    }
}

/// The type to inject, and how the body receives it.
fn injected(ty: &Type) -> syn::Result<(Type, Passing)> {
    match ty {
        Type::ImplTrait(t) => Err(syn::Error::new_spanned(
            t,
            "`impl Trait` parameters make the test generic; name a concrete type that implements `dynamo_test::Inject`",
        )),
        Type::Reference(r) if r.mutability.is_some() => Ok(((*r.elem).clone(), Passing::RefMut)),
        Type::Reference(r) => Ok(((*r.elem).clone(), Passing::Ref)),
        other => Ok((other.clone(), Passing::Value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens as _;
    use syn::parse_quote;

    fn checked(item: ItemFn) -> TestFn {
        match check(&item) {
            Ok(test) => test,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn errors(item: ItemFn) -> Vec<String> {
        match check(&item) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The start of each message, up to its first `: ` or `; `.
    fn heads(item: ItemFn) -> Vec<String> {
        let head = |e: &String| {
            let e = e.split("; ").next().unwrap_or_default();
            e.split(": ").next().unwrap_or_default().to_string()
        };
        errors(item).iter().map(head).collect()
    }

    #[test]
    fn each_parameter_kind() {
        let test = checked(parse_quote! {
            async fn t(api: u16, port: Port, fixture: &Fixture, counter: &mut Counter, ctx: &TestContext, owned: TestContext, _: u16) {}
        });
        assert!(test.is_async());
        let got: Vec<(String, String, Passing)> = test
            .params
            .iter()
            .map(|p| match &p.source {
                Source::Injected { ty, passing } => {
                    (p.name.clone(), ty.to_token_stream().to_string(), *passing)
                }
                Source::Rstest(_) => panic!("{} is not rstest's", p.name),
            })
            .collect();
        let expected = [
            ("api", "u16", Passing::Value),
            ("port", "Port", Passing::Value),
            ("fixture", "Fixture", Passing::Ref),
            ("counter", "Counter", Passing::RefMut),
            ("ctx", "TestContext", Passing::Ref),
            ("owned", "TestContext", Passing::Value),
            ("_6", "u16", Passing::Value),
        ];
        let expected: Vec<(String, String, Passing)> = expected
            .iter()
            .map(|(n, t, p)| (n.to_string(), t.to_string(), *p))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn accepted_shapes() {
        assert!(!checked(parse_quote!(
            fn t() {}
        ))
        .is_async());
        checked(parse_quote!(
            fn t() -> () {}
        ));
        checked(parse_quote!(
            async fn t() -> Result<(), String> {
                Ok(())
            }
        ));
        checked(parse_quote!(
            fn t() -> std::io::Result<()> {
                Ok(())
            }
        ));
        checked(parse_quote!(
            #[ignore]
            #[should_panic]
            fn t(mut x: u16) {}
        ));
    }

    #[test]
    fn each_rejected_shape() {
        let cases: [(ItemFn, &str); 9] = [
            (
                parse_quote!(
                    #[test]
                    fn t() {}
                ),
                "remove `#[test]`",
            ),
            (
                parse_quote!(
                    #[tokio::test]
                    async fn t() {}
                ),
                "remove `#[tokio::test]`",
            ),
            (
                parse_quote!(
                    #[::core::prelude::v1::test]
                    fn t() {}
                ),
                "remove the other test attribute (`#[test]`, `#[tokio::test]`)",
            ),
            (
                parse_quote!(
                    fn t<T>() {}
                ),
                "generic test functions are not supported",
            ),
            (
                parse_quote!(
                    fn t()
                    where
                        u16: Copy,
                    {
                    }
                ),
                "generic test functions are not supported",
            ),
            (
                parse_quote!(
                    fn t(&self) {}
                ),
                "a test function cannot take `self`",
            ),
            (
                parse_quote!(
                    fn t((a, b): (u16, u16)) {}
                ),
                "unsupported parameter pattern",
            ),
            (
                parse_quote!(
                    fn t(p: impl Into<u16>) {}
                ),
                "`impl Trait` parameters make the test generic",
            ),
            (
                parse_quote!(
                    fn t() -> &'static str {
                        ""
                    }
                ),
                "unsupported return type",
            ),
        ];
        for (item, expected) in cases {
            assert_eq!(heads(item), [expected]);
        }
        let variadic: ItemFn = parse_quote!(
            unsafe extern "C" fn t(x: u16, ...) {}
        );
        assert_eq!(
            heads(variadic),
            ["variadic test functions are not supported"]
        );
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let item: ItemFn = parse_quote! {
            #[test]
            async fn t<T>(&self, (a, b): (u16, u16), port: impl Into<u16>, ref r: u16) -> impl Sized {}
        };
        assert_eq!(
            heads(item),
            [
                "remove `#[test]`",
                "generic test functions are not supported",
                "unsupported return type",
                "a test function cannot take `self`",
                "unsupported parameter pattern",
                "`impl Trait` parameters make the test generic",
                "unsupported parameter pattern",
            ]
        );
    }

    #[test]
    fn a_parameter_with_two_mistakes_has_two_errors() {
        let item: ItemFn = parse_quote!(
            async fn t((a, b): impl Sized) {}
        );
        assert_eq!(
            heads(item),
            [
                "unsupported parameter pattern",
                "`impl Trait` parameters make the test generic"
            ]
        );
    }
}
