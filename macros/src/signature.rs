//! Checking the test function's signature and describing its parameters.
//!
//! What can be injected is the compiler's call (through the runtime's
//! `Inject` trait); this module only rejects shapes no trait could fix:
//! generics, `self`, destructuring patterns, impossible return types, and a
//! second test attribute.

use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ItemFn, Pat, ReturnType, Type};

/// How a parameter receives its injected value.
pub enum Passing {
    /// `x: T`: the value itself.
    Value,
    /// `x: &T`: a reference to a value that lives for the whole test.
    Ref,
    /// `x: &mut T`.
    RefMut,
}

/// One parameter of the test function.
pub struct Param {
    /// The name used in logs and the port table.
    pub name: String,
    /// The type that is injected (`T` for `&T`).
    pub injected: Type,
    pub passing: Passing,
}

/// Checks `item` and returns its parameters in order.
pub fn check(item: &ItemFn) -> syn::Result<Vec<Param>> {
    check_attributes(&item.attrs)?;
    let sig = &item.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let message = "generic test functions are not supported: libtest calls a test without type arguments; \
                       write a non-generic test that calls a generic helper";
        return Err(match &sig.generics.where_clause {
            Some(w) if sig.generics.params.is_empty() => syn::Error::new_spanned(w, message),
            _ => syn::Error::new_spanned(&sig.generics.params, message),
        });
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            "variadic test functions are not supported",
        ));
    }
    check_return_type(&sig.output)?;
    sig.inputs
        .iter()
        .enumerate()
        .map(|(i, arg)| param(i, arg))
        .collect()
}

fn check_attributes(attrs: &[Attribute]) -> syn::Result<()> {
    for attr in attrs {
        let path = attr.path();
        if path
            .segments
            .last()
            .is_some_and(|s| s.ident == "test" || s.ident == "dynamo_test")
        {
            let written: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
            // `#[tokio::test]` placed above us has already expanded into `core::prelude::v1::test`.
            let shown = if matches!(written[0].as_str(), "core" | "std") {
                "the other test attribute (`#[test]`, `#[tokio::test]`)".to_string()
            } else {
                format!("`#[{}]`", written.join("::"))
            };
            return Err(syn::Error::new_spanned(
                attr,
                format!("remove {shown}: `#[dynamo_test]` already makes this function a test (and builds its runtime)"),
            ));
        }
    }
    Ok(())
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
    let name = match &*typed.pat {
        Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
            ident.ident.to_string()
        }
        Pat::Wild(_) => format!("_{index}"),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "unsupported parameter pattern: bind a plain name (e.g. `ports: ServicePorts`) and destructure it in the body",
            ));
        }
    };
    if let Type::ImplTrait(t) = &*typed.ty {
        return Err(syn::Error::new_spanned(
            t,
            "`impl Trait` parameters make the test generic; name a concrete type that implements `dynamo_test::Inject`",
        ));
    }
    let (injected, passing) = match &*typed.ty {
        Type::Reference(r) if r.mutability.is_some() => ((*r.elem).clone(), Passing::RefMut),
        Type::Reference(r) => ((*r.elem).clone(), Passing::Ref),
        other => (other.clone(), Passing::Value),
    };
    Ok(Param {
        name,
        injected,
        passing,
    })
}
