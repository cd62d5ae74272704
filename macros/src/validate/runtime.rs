//! `flavor`, `worker_threads` and `start_paused`: the tokio runtime of an
//! async test, and the rules that tie them together (tokio's own, checked
//! here so that a mistake is a compile error at the option, not a panic
//! when the test starts or a setting silently ignored).

use syn::spanned::Spanned as _;
use syn::Meta;

use super::value::{self, Takes};
use crate::config::{Flavor, Runtime};
use crate::errors::{all, join};
use crate::parse::RawOptions;

/// The flavor as written, before `worker_threads` joins it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlavorName {
    CurrentThread,
    MultiThread,
}

pub fn build(raw: &RawOptions, is_async: bool) -> syn::Result<Runtime> {
    if is_async {
        async_runtime(raw)
    } else {
        plain_fn(raw).map(|()| Runtime::default())
    }
}

/// A plain `fn` has no runtime to configure. One error, at the first
/// runtime option: the fix (make the test `async`, or drop them all) is
/// one decision, and their values no longer matter.
fn plain_fn(raw: &RawOptions) -> syn::Result<()> {
    let options = [
        ("flavor", &raw.flavor),
        ("worker_threads", &raw.worker_threads),
        ("start_paused", &raw.start_paused),
    ];
    let first = options
        .into_iter()
        .find_map(|(name, option)| option.as_ref().map(|o| (name, o)));
    match first {
        None => Ok(()),
        Some((name, option)) => Err(syn::Error::new(
            option.path().span(),
            format!("`{name}` configures the tokio runtime of an async test; make the function `async` or remove `{name}`"),
        )),
    }
}

fn async_runtime(raw: &RawOptions) -> syn::Result<Runtime> {
    let flavor = raw.flavor.as_ref().map(flavor).transpose();
    let workers = raw.worker_threads.as_ref().map(worker_threads).transpose();
    let paused = raw.start_paused.as_ref().map(start_paused).transpose();
    let rules = all([
        workers_need_multi_thread(raw, &flavor, &workers),
        paused_needs_current_thread(raw, &flavor, &paused),
    ]);
    let values = join(join(flavor, workers), paused);
    let ((flavor, worker_threads), start_paused) = join(values, rules)?.0;
    let flavor = match flavor {
        Some(FlavorName::MultiThread) => Flavor::MultiThread { worker_threads },
        Some(FlavorName::CurrentThread) => Flavor::CurrentThread,
        None => Runtime::default().flavor,
    };
    Ok(Runtime {
        flavor,
        start_paused: start_paused.unwrap_or(Runtime::default().start_paused),
    })
}

fn flavor(option: &Meta) -> syn::Result<FlavorName> {
    let takes = Takes {
        what: "a string",
        example: "flavor = \"multi_thread\"",
    };
    let lit = value::string(option, &takes)?;
    match lit.value().as_str() {
        "current_thread" => Ok(FlavorName::CurrentThread),
        "multi_thread" => Ok(FlavorName::MultiThread),
        other => Err(syn::Error::new(
            lit.span(),
            format!("unknown flavor `{other}`; write `flavor = \"current_thread\"` or `flavor = \"multi_thread\"`"),
        )),
    }
}

fn worker_threads(option: &Meta) -> syn::Result<usize> {
    let takes = Takes {
        what: "an integer",
        example: "worker_threads = 2",
    };
    let lit = value::integer(option, &takes)?;
    // Signed, so that `-1` gets the same message as `0`.
    let n: i128 = lit.base10_parse()?;
    if n < 1 {
        return Err(syn::Error::new(
            lit.span(),
            "`worker_threads` must be at least 1",
        ));
    }
    usize::try_from(n).map_err(|_| syn::Error::new(lit.span(), "`worker_threads` is too large"))
}

fn start_paused(option: &Meta) -> syn::Result<bool> {
    let takes = Takes {
        what: "a boolean",
        example: "start_paused = true",
    };
    value::boolean(option, &takes).map(|lit| lit.value)
}

/// tokio ignores `worker_threads` on a current-thread runtime. Checked only
/// when both values are good: a bad flavor has its own error already.
fn workers_need_multi_thread(
    raw: &RawOptions,
    flavor: &syn::Result<Option<FlavorName>>,
    workers: &syn::Result<Option<usize>>,
) -> syn::Result<()> {
    match (flavor, workers, &raw.worker_threads) {
        (Ok(flavor), Ok(Some(_)), Some(option)) if *flavor != Some(FlavorName::MultiThread) => {
            Err(syn::Error::new(
                option.path().span(),
                "`worker_threads` requires the multi-thread runtime; add `flavor = \"multi_thread\"` or remove `worker_threads`",
            ))
        }
        _ => Ok(()),
    }
}

/// tokio pauses time only on a current-thread runtime (`time::pause`
/// panics on a multi-thread one).
fn paused_needs_current_thread(
    raw: &RawOptions,
    flavor: &syn::Result<Option<FlavorName>>,
    paused: &syn::Result<Option<bool>>,
) -> syn::Result<()> {
    match (flavor, paused, &raw.start_paused) {
        (Ok(Some(FlavorName::MultiThread)), Ok(Some(true)), Some(option)) => Err(syn::Error::new(
            option.path().span(),
            "`start_paused` requires the `current_thread` flavor; remove `flavor = \"multi_thread\"` or `start_paused`",
        )),
        _ => Ok(()),
    }
}
