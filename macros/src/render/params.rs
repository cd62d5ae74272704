//! The parameters: asking the runtime for each injected value, and passing
//! every value to the body: injected ones by value, `&` or `&mut`, rstest's
//! (a case's values) by value, as rstest gave them.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use crate::signature::{Param, Passing, Source};

/// `let __dynamo_arg_i = <T as Inject>::inject(&ctx, "name").await?;` for
/// each injected parameter, in order (the order the user wrote them in, so
/// setup happens in that order too).
pub fn injections(krate: &Path, params: &[Param]) -> TokenStream {
    let lets = injected(params).map(|(i, p, ty, passing)| {
        let var = arg_ident(i);
        let name = &p.name;
        let mutability = mutability(passing);
        // Spanned at the type: an uninjectable type is reported there.
        let call = quote_spanned! {ty.span()=>
            <#ty as #krate::__private::Inject>::inject(&__dynamo_ctx, #name)
        };
        quote! {
            let #mutability #var = match #call.await {
                ::core::result::Result::Ok(v) => v,
                ::core::result::Result::Err(e) => return ::core::result::Result::Err(
                    #krate::__private::Error::Inject {
                        param: ::std::string::String::from(#name),
                        source: ::std::boxed::Box::new(e),
                    }
                ),
            };
        }
    });
    quote!(#(#lets)*)
}

/// The arguments passed to the body: `a0, &a1, &mut a2, case_value`.
pub fn call_args(params: &[Param]) -> Vec<TokenStream> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let var = arg_ident(i);
            match &p.source {
                Source::Injected { passing, .. } => match passing {
                    Passing::Value => quote!(#var),
                    Passing::Ref => quote!(&#var),
                    Passing::RefMut => quote!(&mut #var),
                },
                Source::Rstest(case) => {
                    let ident = &case.ident;
                    quote!(#ident)
                }
            }
        })
        .collect()
}

/// The variables holding the injected values (`mut` for those the body
/// receives as `&mut`), in order.
pub fn injected_vars(params: &[Param]) -> Vec<(Option<TokenStream>, Ident)> {
    injected(params)
        .map(|(i, _, _, passing)| (mutability(passing), arg_ident(i)))
        .collect()
}

/// The injected parameters with their positions, types and passing.
fn injected(params: &[Param]) -> impl Iterator<Item = (usize, &Param, &syn::Type, Passing)> {
    params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.source {
            Source::Injected { ty, passing } => Some((i, p, ty, *passing)),
            Source::Rstest(_) => None,
        })
}

/// `mut` for a value the body receives as `&mut`.
fn mutability(passing: Passing) -> Option<TokenStream> {
    (passing == Passing::RefMut).then(|| quote!(mut))
}

/// The variable of the parameter at `i` (injected parameters only).
pub fn arg_ident(i: usize) -> Ident {
    format_ident!("__dynamo_arg_{}", i)
}
