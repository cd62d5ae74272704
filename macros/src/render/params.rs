//! The parameters: asking the runtime for each value, and passing it to the
//! body by value, `&` or `&mut`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Path};

use crate::signature::{Param, Passing};

/// `let __dynamo_arg_i = <T as Inject>::inject(&ctx, "name").await?;` for
/// each parameter, in order (the order the user wrote them in, so setup
/// happens in that order too).
pub fn injections(krate: &Path, params: &[Param]) -> TokenStream {
    let lets = params.iter().enumerate().map(|(i, p)| {
        let var = arg_ident(i);
        let ty = &p.injected;
        let name = &p.name;
        let mutability = mutability(p);
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

/// The arguments passed to the body: `a0, &a1, &mut a2`.
pub fn call_args(params: &[Param]) -> Vec<TokenStream> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let var = arg_ident(i);
            match p.passing {
                Passing::Value => quote!(#var),
                Passing::Ref => quote!(&#var),
                Passing::RefMut => quote!(&mut #var),
            }
        })
        .collect()
}

/// `mut` for a value the body receives as `&mut`.
pub fn mutability(param: &Param) -> Option<TokenStream> {
    (param.passing == Passing::RefMut).then(|| quote!(mut))
}

pub fn arg_ident(i: usize) -> Ident {
    format_ident!("__dynamo_arg_{}", i)
}
