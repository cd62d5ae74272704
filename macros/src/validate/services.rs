//! `services(etcd, nats(isolated))`: infrastructure that is healthy before
//! the body starts.

use proc_macro2::Span;
use quote::ToTokens as _;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Lit, MacroDelimiter, Meta, MetaList, Path, Token};

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

/// `etcd`, `nats`, `etcd(isolated)`, `etcd(cluster = 3)`,
/// `nats(no_jetstream)`, and where it is written.
fn entry(entry: &Meta) -> syn::Result<(Service, Span)> {
    let kind = kind(entry.path());
    let written = match entry {
        Meta::Path(_) => Ok(Vec::new()),
        Meta::List(list) => settings(list),
        Meta::NameValue(assigned) => Err(syn::Error::new_spanned(
            assigned,
            format!(
                "write a service as `{0}` or `{0}(isolated)`",
                path_text(entry.path())
            ),
        )),
    };
    let (kind, written) = join(kind, written)?;
    let service = combine(kind, &written)?;
    Ok((service, entry.path().span()))
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

/// One setting inside `etcd(..)` / `nats(..)`, with its span.
#[derive(Clone, Copy)]
enum Setting {
    Shared,
    Isolated,
    /// `cluster = N` (etcd).
    Cluster(u8),
    /// `no_jetstream` (NATS).
    NoJetstream,
}

/// The settings in `etcd(isolated, cluster = 3)`, each checked alone;
/// whether they fit the service and each other is [`combine`]'s job.
fn settings(list: &MetaList) -> syn::Result<Vec<(Setting, Span)>> {
    let service = path_text(&list.path);
    let not_a_list = || {
        syn::Error::new_spanned(
            list,
            format!(
                "write `{service}(isolated)` (a private instance) or `{service}(shared)` (the default){}",
                extras(&service)
            ),
        )
    };
    if !matches!(list.delimiter, MacroDelimiter::Paren(_)) {
        return Err(not_a_list());
    }
    let items = list
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .map_err(|_| not_a_list())?;
    if items.is_empty() {
        return Err(not_a_list());
    }
    all(items.iter().map(|item| setting(item, &service)))
}

/// What a service takes besides its mode, for messages.
fn extras(service: &str) -> &'static str {
    match service {
        "etcd" => "; a cluster: `etcd(cluster = 3)`",
        "nats" => "; without JetStream: `nats(no_jetstream)`",
        _ => "",
    }
}

fn setting(item: &Meta, service: &str) -> syn::Result<(Setting, Span)> {
    let span = item.span();
    let name = path_text(item.path());
    let unknown = || {
        syn::Error::new(
            span,
            format!(
                "unknown setting `{name}` of `{service}`; write `isolated` (a private instance) or `shared` (the default){}",
                extras(service)
            ),
        )
    };
    match (item, name.as_str()) {
        (Meta::Path(_), "shared") => Ok((Setting::Shared, span)),
        (Meta::Path(_), "isolated") => Ok((Setting::Isolated, span)),
        (Meta::Path(_), "no_jetstream") => Ok((Setting::NoJetstream, span)),
        (Meta::NameValue(assigned), "cluster") => Ok((cluster_size(&assigned.value)?, span)),
        (_, "cluster") => Err(syn::Error::new(
            span,
            "write the cluster's size as `cluster = 3` (or 5)",
        )),
        _ => Err(unknown()),
    }
}

/// `3` or `5`: odd, so that a majority survives a member's loss, and
/// small enough for a test machine.
fn cluster_size(value: &Expr) -> syn::Result<Setting> {
    let size = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u8>().ok(),
        _ => None,
    };
    match size {
        Some(n @ (3 | 5)) => Ok(Setting::Cluster(n)),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`cluster` takes 3 or 5 (members: an odd number keeps a quorum when one fails), not `{}`",
                value.to_token_stream()
            ),
        )),
    }
}

/// The service the settings describe, or an error at each setting that
/// does not fit the service or an earlier setting.
fn combine(kind: ServiceKind, written: &[(Setting, Span)]) -> syn::Result<Service> {
    let checks = written.iter().enumerate().map(|(i, &(setting, span))| {
        let earlier = written[..i].iter().map(|&(s, _)| s);
        fits(kind, setting, earlier).map_err(|m| syn::Error::new(span, m))
    });
    all(checks.collect::<Vec<_>>())?;
    let mut service = Service {
        kind,
        mode: Mode::default(),
        jetstream: true,
    };
    for &(setting, _) in written {
        apply(&mut service, setting);
    }
    Ok(service)
}

/// Whether `setting` fits `kind` and every setting before it; else what
/// to write instead.
fn fits(
    kind: ServiceKind,
    setting: Setting,
    mut earlier: impl Iterator<Item = Setting>,
) -> Result<(), String> {
    match (kind, setting) {
        (ServiceKind::Nats, Setting::Cluster(_)) => Err(
            "`cluster` is for etcd: write `etcd(cluster = 3)`; NATS runs as one private server with `nats(isolated)`".into(),
        ),
        (ServiceKind::Etcd, Setting::NoJetstream) => {
            Err("`no_jetstream` is for NATS: write `nats(no_jetstream)`".into())
        }
        _ => earlier.find_map(|e| clash(kind, e, setting)).map_or(Ok(()), Err),
    }
}

/// What is wrong with writing `later` after `earlier`, if anything.
fn clash(kind: ServiceKind, earlier: Setting, later: Setting) -> Option<String> {
    use Setting::*;
    let name = match kind {
        ServiceKind::Etcd => "etcd",
        ServiceKind::Nats => "nats",
    };
    match (earlier, later) {
        (Cluster(_), Shared) | (Shared, Cluster(_)) => Some(
            "the shared etcd is a single member serving every test: a cluster is private, write `etcd(cluster = 3)`".into(),
        ),
        (NoJetstream, Shared) | (Shared, NoJetstream) => Some(
            "the shared NATS always runs JetStream (Dynamo needs it, and it serves every test in the run): write `nats(no_jetstream)` for a private server without it".into(),
        ),
        (Shared | Isolated, Shared | Isolated) => Some(format!(
            "a service takes one mode: write `{name}(isolated)` (a private instance) or `{name}(shared)` (the default)"
        )),
        (Cluster(_), Cluster(_)) | (NoJetstream, NoJetstream) => {
            Some("this setting is written twice; write it once".into())
        }
        _ => None,
    }
}

/// Records `setting` in `service` (the settings fit together): a cluster
/// and `no_jetstream` imply a private instance.
fn apply(service: &mut Service, setting: Setting) {
    match setting {
        Setting::Shared => {}
        Setting::Isolated => {
            if service.mode == Mode::Shared {
                service.mode = Mode::Isolated;
            }
        }
        Setting::Cluster(n) => service.mode = Mode::Cluster(n),
        Setting::NoJetstream => {
            service.jetstream = false;
            if service.mode == Mode::Shared {
                service.mode = Mode::Isolated;
            }
        }
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
