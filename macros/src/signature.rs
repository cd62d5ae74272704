//! The signature check: the test function, and how each parameter receives
//! its injected value.
//!
//! What can be injected is the compiler's call (through the runtime's
//! `Inject` trait); this module only rejects shapes no trait could fix:
//! generics, `self`, destructuring patterns, impossible return types, and a
//! second test attribute. Each check is independent, so all their errors
//! are reported together.

use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Generics, ItemFn, Pat, ReturnType, Signature, Type};

use crate::errors::{all, join};

/// A test function whose signature passed the check.
pub struct TestFn {
    /// The function as written.
    pub item: ItemFn,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

impl TestFn {
    pub fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }
}

/// One parameter of the test function.
pub struct Param {
    /// The name used in logs and the port table (`_<index>` for `_`).
    pub name: String,
    /// The type that is injected (`T` for `&T` and `&mut T`).
    pub injected: Type,
    pub passing: Passing,
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
    let shape = all([
        check_attributes(&item.attrs),
        check_generics(&sig.generics),
        check_variadic(sig),
        check_return_type(&sig.output),
    ]);
    let params = all(sig.inputs.iter().enumerate().map(|(i, arg)| param(i, arg)));
    let (_, params) = join(shape, params)?;
    Ok(TestFn {
        item: item.clone(),
        params,
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
    // `#[tokio::test]` placed above us has already expanded into `core::prelude::v1::test`.
    let shown = match written.first().map(String::as_str) {
        Some("core" | "std") => {
            "the other test attribute (`#[test]`, `#[tokio::test]`)".to_string()
        }
        _ => format!("`#[{}]`", written.join("::")),
    };
    Err(syn::Error::new_spanned(
        attr,
        format!("remove {shown}: `#[dynamo_test]` already makes this function a test (and builds its runtime)"),
    ))
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

fn param(index: usize, arg: &FnArg) -> syn::Result<Param> {
    let typed = match arg {
        FnArg::Receiver(r) => {
            return Err(syn::Error::new(
                r.span(),
                "a test function cannot take `self`; make it a free function",
            ));
        }
        FnArg::Typed(t) => t,
    };
    let (name, (injected, passing)) = join(param_name(index, &typed.pat), injected(&typed.ty))?;
    Ok(Param {
        name,
        injected,
        passing,
    })
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
