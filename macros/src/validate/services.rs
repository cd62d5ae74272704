//! `services(etcd, nats(isolated))`: infrastructure that is healthy before
//! the body starts.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{MacroDelimiter, Meta, MetaList, Path, Token};

use crate::config::{Mode, Service, ServiceKind};
use crate::errors::{all, join};
use crate::parse::path_text;

/// The services in the order written, or an error for each bad entry.
pub fn build(option: &Meta) -> syn::Result<Vec<Service>> {
    let entries = list(option)?;
    let services: Vec<syn::Result<(Service, Span)>> = entries.iter().map(entry).collect();
    let twice = listed_twice(&services);
    let (services, ()) = join(all(services), twice)?;
    Ok(services.into_iter().map(|(service, _)| service).collect())
}

fn list(option: &Meta) -> syn::Result<Punctuated<Meta, Token![,]>> {
    let not_a_list = || {
        syn::Error::new(
            option.path().span(),
            "`services` takes a list: write `services(etcd, nats)`",
        )
    };
    let Meta::List(list) = option else {
        return Err(not_a_list());
    };
    if !matches!(list.delimiter, MacroDelimiter::Paren(_)) {
        return Err(not_a_list());
    }
    list.parse_args_with(Punctuated::parse_terminated)
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                "`services` takes a comma-separated list: write `services(etcd, nats(isolated))`",
            )
        })
}

/// `etcd`, `nats`, `etcd(isolated)`, `nats(shared)`, and where it is written.
fn entry(entry: &Meta) -> syn::Result<(Service, Span)> {
    let kind = kind(entry.path());
    let mode = match entry {
        Meta::Path(_) => Ok(Mode::default()),
        Meta::List(list) => mode(list),
        Meta::NameValue(assigned) => Err(syn::Error::new_spanned(
            assigned,
            format!(
                "write a service as `{0}` or `{0}(isolated)`",
                path_text(entry.path())
            ),
        )),
    };
    let (kind, mode) = join(kind, mode)?;
    Ok((Service { kind, mode }, entry.path().span()))
}

fn kind(path: &Path) -> syn::Result<ServiceKind> {
    match path_text(path).as_str() {
        "etcd" => Ok(ServiceKind::Etcd),
        "nats" => Ok(ServiceKind::Nats),
        other => Err(syn::Error::new_spanned(
            path,
            format!("unknown service `{other}`; `services` takes `etcd` and `nats`, e.g. `services(etcd, nats(isolated))`"),
        )),
    }
}

/// The mode in `etcd(isolated)`: one name.
fn mode(list: &MetaList) -> syn::Result<Mode> {
    let one_mode = || {
        syn::Error::new_spanned(
            list,
            format!(
                "a service takes one mode: write `{0}(isolated)` (a private instance) or `{0}(shared)` (the default)",
                path_text(&list.path)
            ),
        )
    };
    if !matches!(list.delimiter, MacroDelimiter::Paren(_)) {
        return Err(one_mode());
    }
    let mode: Path = list.parse_args().map_err(|_| one_mode())?;
    match path_text(&mode).as_str() {
        "isolated" => Ok(Mode::Isolated),
        "shared" => Ok(Mode::Shared),
        other => Err(syn::Error::new_spanned(
            &mode,
            format!("unknown service mode `{other}`; write `isolated` (a private instance) or `shared` (the default)"),
        )),
    }
}

/// A test gets one instance of each service; a second entry would be
/// ignored or contradict the first (`etcd, etcd(isolated)`).
fn listed_twice(services: &[syn::Result<(Service, Span)>]) -> syn::Result<()> {
    let good: Vec<&(Service, Span)> = services.iter().flatten().collect();
    let twice = good.iter().enumerate().filter_map(|(i, (service, span))| {
        let earlier = good[..i].iter().any(|(e, _)| e.kind == service.kind);
        earlier.then(|| syn::Error::new(*span, "this service is listed twice; list it once"))
    });
    all(twice.map(Err::<(), _>)).map(drop)
}
