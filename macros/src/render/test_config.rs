//! The runtime's `TestConfig` value: name, timeout, flavor, services, case,
//! should_panic.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::{Ident, Path};

use crate::config::{Config, Flavor, Mode, Service, ServiceKind};

/// `case`: the test is one case of an `#[rstest]` function, named by the
/// runtime after the case. `should_panic`: it carries `#[should_panic]`
/// (no failure report for what is its pass).
pub fn render(config: &Config, name: &Ident, case: bool, should_panic: bool) -> TokenStream {
    let krate = &config.krate;
    let timeout = match config.timeout {
        Some(limit) => {
            // Validation keeps it a whole number of milliseconds that fits
            // `from_millis`'s u64; unsuffixed, the compiler would still
            // refuse one that did not.
            let ms = Literal::u128_unsuffixed(limit.as_millis());
            quote!(::core::option::Option::Some(#krate::__private::Duration::from_millis(#ms)))
        }
        None => quote!(::core::option::Option::None),
    };
    let flavor = flavor(krate, config.runtime.flavor);
    let start_paused = config.runtime.start_paused;
    let services = config.services.iter().map(|s| service(krate, s));
    quote! {
        #krate::__private::TestConfig {
            name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
            timeout: #timeout,
            flavor: #flavor,
            start_paused: #start_paused,
            services: &[#(#services),*],
            case: #case,
            should_panic: #should_panic,
        }
    }
}

fn flavor(krate: &Path, flavor: Flavor) -> TokenStream {
    match flavor {
        Flavor::CurrentThread => quote!(#krate::__private::Flavor::CurrentThread),
        Flavor::MultiThread { worker_threads } => {
            let workers = match worker_threads {
                Some(n) => quote!(::core::option::Option::Some(#n)),
                None => quote!(::core::option::Option::None),
            };
            quote!(#krate::__private::Flavor::MultiThread { worker_threads: #workers })
        }
    }
}

fn service(krate: &Path, service: &Service) -> TokenStream {
    let kind = match service.kind {
        ServiceKind::Etcd => quote!(Etcd),
        ServiceKind::Nats => quote!(Nats),
    };
    let mode = match service.mode {
        Mode::Shared => quote!(Shared),
        Mode::Isolated => quote!(Isolated),
        Mode::Cluster(members) => quote!(Cluster(#members)),
    };
    let jetstream = service.jetstream;
    quote! {
        #krate::__private::ServiceRequest {
            kind: #krate::__private::ServiceKind::#kind,
            mode: #krate::__private::Mode::#mode,
            jetstream: #jetstream,
        }
    }
}
