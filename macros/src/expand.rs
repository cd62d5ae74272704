//! Writing the test wrapper.
//!
//! ```text
//! #[dynamo_test(timeout = "30s")]          #[::core::prelude::v1::test]
//! async fn t(api: u16, ctx: &TestContext)  fn t() {
//! { body }                          ==>        async fn __dynamo_test_body(api: u16, ctx: &TestContext) { body }
//!                                             run_async(config, |ctx| async move {
//!                                                 let a0 = inject::<u16>(&ctx, "api").await?;
//!                                                 let a1 = inject::<TestContext>(&ctx, "ctx").await?;
//!                                                 enter_body(&ctx);
//!                                                 Ok(__dynamo_test_body(a0, &a1).await.into_outcome())
//!                                             })
//!                                         }
//! ```
//! Generated code names only `<crate>::__private::*`, where `<crate>` is
//! `::dynamo_test` or the `crate = "..."` option.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, Path, ReturnType};

use crate::options::{Flavor, Options, ServiceKind};
use crate::signature::{self, Param, Passing};

/// The macro's entry point: the wrapper, or on bad input one error plus a
/// harmless fallback (the function, untouched, not a test), so the user
/// sees that error and not a cascade.
pub fn dynamo_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let err = syn::Error::new(
                Span::call_site(),
                "#[dynamo_test] goes on a test function (`fn` or `async fn`)",
            );
            return join(err, item);
        }
    };
    match Options::parse(args).and_then(|options| expand(&options, &func)) {
        Ok(tokens) => tokens,
        Err(err) => {
            func.attrs
                .retain(|a| a.path().segments.last().is_none_or(|s| s.ident != "test"));
            join(err, quote!(#[allow(dead_code)] #func))
        }
    }
}

fn join(err: syn::Error, fallback: TokenStream) -> TokenStream {
    let err = err.to_compile_error();
    quote!(#err #fallback)
}

fn expand(options: &Options, func: &ItemFn) -> syn::Result<TokenStream> {
    let params = signature::check(func)?;
    let is_async = func.sig.asyncness.is_some();
    if !is_async {
        if let Some((name, span)) = options.runtime_option() {
            return Err(syn::Error::new(
                span,
                format!("`{name}` configures the tokio runtime of an async test; make the function `async` or remove `{name}`"),
            ));
        }
    }
    options.check_combinations()?;
    let krate = match &options.krate {
        Some(k) => k.value.clone(),
        None => syn::parse_quote!(::dynamo_test),
    };
    let name = &func.sig.ident;
    let body_fn = body_fn(func);
    let config = config(options, &krate, name);
    let run = if is_async {
        run_async(
            &krate,
            &params,
            config,
            &func.sig.output,
            options.timeout_ms.is_some(),
        )
    } else {
        run_sync(
            &krate,
            &params,
            config,
            &func.sig.output,
            options.timeout_ms.is_some(),
        )
    };
    let attrs = &func.attrs;
    let vis = &func.vis;
    // Under `cfg(test)` the wrapper is a test. Elsewhere (a doctest, a
    // trybuild case) it stays a type-checked, unused function rather than
    // vanishing with `#[test]`, so type errors are reported everywhere.
    Ok(quote! {
        #(#attrs)*
        #[cfg_attr(test, ::core::prelude::v1::test)]
        #[cfg_attr(not(test), allow(dead_code))]
        #vis fn #name() {
            #body_fn
            #run
        }
    })
}

/// The user's function, renamed, inside the wrapper.
fn body_fn(func: &ItemFn) -> TokenStream {
    let mut sig = func.sig.clone();
    sig.ident = body_ident();
    let block = &func.block;
    quote!(#sig #block)
}

fn body_ident() -> Ident {
    Ident::new("__dynamo_test_body", Span::call_site())
}

fn config(options: &Options, krate: &Path, name: &Ident) -> TokenStream {
    let timeout = match &options.timeout_ms {
        Some(t) => {
            let ms = t.value;
            quote!(::core::option::Option::Some(#krate::__private::Duration::from_millis(#ms)))
        }
        None => quote!(::core::option::Option::None),
    };
    let flavor = match &options.flavor {
        Some(f) if f.value == Flavor::MultiThread => {
            let workers = match &options.worker_threads {
                Some(w) => {
                    let n = w.value;
                    quote!(::core::option::Option::Some(#n))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(#krate::__private::Flavor::MultiThread { worker_threads: #workers })
        }
        _ => quote!(#krate::__private::Flavor::CurrentThread),
    };
    let start_paused = options.start_paused.as_ref().is_some_and(|p| p.value);
    let services = options.services.iter().map(|s| {
        let kind = match s.value.kind {
            ServiceKind::Etcd => quote!(Etcd),
            ServiceKind::Nats => quote!(Nats),
        };
        let mode = if s.value.isolated {
            quote!(Isolated)
        } else {
            quote!(Shared)
        };
        quote! {
            #krate::__private::ServiceRequest {
                kind: #krate::__private::ServiceKind::#kind,
                mode: #krate::__private::Mode::#mode,
            }
        }
    });
    quote! {
        #krate::__private::TestConfig {
            name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
            timeout: #timeout,
            flavor: #flavor,
            start_paused: #start_paused,
            services: &[#(#services),*],
        }
    }
}

/// `let __dynamo_arg_i = inject::<T>(&ctx, "name").await?;` for each parameter.
fn injections(krate: &Path, params: &[Param]) -> TokenStream {
    let lets = params.iter().enumerate().map(|(i, p)| {
        let var = arg_ident(i);
        let ty = &p.injected;
        let name = &p.name;
        let mutability = matches!(p.passing, Passing::RefMut).then(|| quote!(mut));
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
fn call_args(params: &[Param]) -> Vec<TokenStream> {
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

fn arg_ident(i: usize) -> Ident {
    format_ident!("__dynamo_arg_{}", i)
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

/// The runner function: `<base>`, or `<base>_with_timeout`, which runs the
/// test on a supervised thread.
fn runner(base: &str, has_timeout: bool) -> Ident {
    match has_timeout {
        true => format_ident!("{base}_with_timeout"),
        false => format_ident!("{base}"),
    }
}

fn run_async(
    krate: &Path,
    params: &[Param],
    config: TokenStream,
    output: &ReturnType,
    has_timeout: bool,
) -> TokenStream {
    let injections = injections(krate, params);
    let args = call_args(params);
    let body = body_ident();
    let outcome = outcome_of(krate, output, quote!(#body(#(#args),*).await));
    let runner = runner("run_async", has_timeout);
    quote! {
        #krate::__private::#runner(#config, |__dynamo_ctx: #krate::__private::TestContext| async move {
            #injections
            #krate::__private::enter_body(&__dynamo_ctx);
            ::core::result::Result::<_, #krate::__private::Error>::Ok(#outcome)
        })
    }
}

fn run_sync(
    krate: &Path,
    params: &[Param],
    config: TokenStream,
    output: &ReturnType,
    has_timeout: bool,
) -> TokenStream {
    let injections = injections(krate, params);
    let args = call_args(params);
    let vars: Vec<Ident> = (0..params.len()).map(arg_ident).collect();
    let muts = params
        .iter()
        .map(|p| matches!(p.passing, Passing::RefMut).then(|| quote!(mut)));
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
            |((#(#muts #vars,)*), __dynamo_ctx)| {
                // Keeps the context alive (and so its reservations) during the body.
                let _ = &__dynamo_ctx;
                #outcome
            },
        )
    }
}
