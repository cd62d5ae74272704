//! Parsing the attribute's options: `#[dynamo_test(flavor = "...", ...)]`.
//!
//! Each option is stored with its span, so a later check (e.g. an option
//! that conflicts with another, or with a plain `fn`) points at the option.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{LitBool, LitInt, LitStr, Path};

/// The runtime flavor an async test asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

/// A value and where it was written.
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The parsed options. `None` means not written.
#[derive(Default)]
pub struct Options {
    pub flavor: Option<Spanned<Flavor>>,
    pub worker_threads: Option<Spanned<usize>>,
    pub start_paused: Option<Spanned<bool>>,
    pub krate: Option<Spanned<Path>>,
    /// The timeout in milliseconds.
    pub timeout_ms: Option<Spanned<u64>>,
    /// `services(etcd, nats(isolated))`, in order.
    pub services: Vec<Spanned<Service>>,
}

/// Infrastructure a test needs before its body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub kind: ServiceKind,
    pub isolated: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Etcd,
    Nats,
}

const KNOWN: &str = "`flavor`, `worker_threads`, `start_paused`, `timeout`, `services`, `crate`";

impl Options {
    /// Parses the attribute's arguments (see [`Options::check_combinations`]).
    pub fn parse(args: TokenStream) -> syn::Result<Options> {
        let mut options = Options::default();
        let mut ours = false;
        let parser = syn::meta::parser(|meta| {
            let result = options.parse_one(meta);
            ours = result.is_err();
            result
        });
        syn::parse::Parser::parse2(parser, args).map_err(|e| {
            if ours {
                e
            } else {
                // syn's own wording ("unexpected literal in nested attribute") helps no one.
                syn::Error::new(
                    e.span(),
                    format!("expected options like `timeout = \"30s\"`, separated by commas; #[dynamo_test] accepts {KNOWN}"),
                )
            }
        })?;
        Ok(options)
    }

    fn parse_one(&mut self, meta: ParseNestedMeta) -> syn::Result<()> {
        let span = meta.path.span();
        let name = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match name.as_str() {
            "flavor" => {
                let lit: LitStr = value(&meta, "a string", "flavor = \"multi_thread\"")?;
                let value = match lit.value().as_str() {
                    "current_thread" => Flavor::CurrentThread,
                    "multi_thread" => Flavor::MultiThread,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("unknown flavor `{other}`; write `flavor = \"current_thread\"` or `flavor = \"multi_thread\"`"),
                        ))
                    }
                };
                set(&mut self.flavor, "flavor", Spanned { value, span })
            }
            "worker_threads" => {
                let lit: LitInt = value(&meta, "an integer", "worker_threads = 2")?;
                let value: usize = lit.base10_parse()?;
                if value == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`worker_threads` must be at least 1",
                    ));
                }
                set(
                    &mut self.worker_threads,
                    "worker_threads",
                    Spanned { value, span },
                )
            }
            "start_paused" => {
                let lit: LitBool = value(&meta, "a boolean", "start_paused = true")?;
                set(
                    &mut self.start_paused,
                    "start_paused",
                    Spanned {
                        value: lit.value,
                        span,
                    },
                )
            }
            "crate" => {
                let lit: LitStr = value(&meta, "a string", "crate = \"my_dynamo_test\"")?;
                let value: Path = lit.parse().map_err(|_| {
                    syn::Error::new(lit.span(), "`crate` takes a path to the dynamo-test crate, e.g. `crate = \"my_dynamo_test\"`")
                })?;
                set(&mut self.krate, "crate", Spanned { value, span })
            }
            "timeout" => {
                let lit: LitStr = value(
                    &meta,
                    "a string with a unit (ms, s, m, h)",
                    "timeout = \"30s\"",
                )?;
                let value = parse_duration_ms(&lit.value()).map_err(|why| {
                    syn::Error::new(lit.span(), format!("bad timeout {:?}: {why}; write e.g. `timeout = \"30s\"`, `\"500ms\"` or `\"2m\"`", lit.value()))
                })?;
                set(&mut self.timeout_ms, "timeout", Spanned { value, span })
            }
            "services" => {
                if !self.services.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "duplicate option `services`; list every service in one `services(...)`",
                    ));
                }
                if !meta.input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        span,
                        "`services` takes a list: write `services(etcd, nats)`",
                    ));
                }
                let mut found = Vec::new();
                meta.parse_nested_meta(|inner| {
                    found.push(parse_service(&inner)?);
                    Ok(())
                })?;
                self.services = found;
                Ok(())
            }
            _ => Err(syn::Error::new_spanned(
                &meta.path,
                format!(
                    "unknown option `{}`; #[dynamo_test] accepts {KNOWN}",
                    path_text(&meta.path)
                ),
            )),
        }
    }

    /// Checks that the options fit together. Called after the check that a
    /// plain `fn` has no runtime options, which is the more useful error.
    pub fn check_combinations(&self) -> syn::Result<()> {
        for (i, s) in self.services.iter().enumerate() {
            if self.services[..i]
                .iter()
                .any(|earlier| earlier.value.kind == s.value.kind)
            {
                return Err(syn::Error::new(
                    s.span,
                    "this service is listed twice; list it once",
                ));
            }
        }
        let multi = matches!(&self.flavor, Some(f) if f.value == Flavor::MultiThread);
        if let Some(w) = &self.worker_threads {
            if !multi {
                return Err(syn::Error::new(
                    w.span,
                    "`worker_threads` requires the multi-thread runtime; add `flavor = \"multi_thread\"` or remove `worker_threads`",
                ));
            }
        }
        if let Some(p) = &self.start_paused {
            if multi && p.value {
                return Err(syn::Error::new(
                    p.span,
                    "`start_paused` requires the `current_thread` flavor; remove `flavor = \"multi_thread\"` or `start_paused`",
                ));
            }
        }
        Ok(())
    }

    /// The span of the first runtime option (`flavor`, `worker_threads`,
    /// `start_paused`), which a plain `fn` cannot take.
    pub fn runtime_option(&self) -> Option<(&'static str, Span)> {
        if let Some(f) = &self.flavor {
            return Some(("flavor", f.span));
        }
        if let Some(w) = &self.worker_threads {
            return Some(("worker_threads", w.span));
        }
        self.start_paused.as_ref().map(|p| ("start_paused", p.span))
    }
}

fn set<T>(slot: &mut Option<Spanned<T>>, name: &str, value: Spanned<T>) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            value.span,
            format!("duplicate option `{name}`; write it once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// One entry of `services(...)`: `etcd`, `nats`, `etcd(isolated)`, `nats(shared)`.
fn parse_service(meta: &ParseNestedMeta) -> syn::Result<Spanned<Service>> {
    let span = meta.path.span();
    let kind = match path_text(&meta.path).as_str() {
        "etcd" => ServiceKind::Etcd,
        "nats" => ServiceKind::Nats,
        other => {
            return Err(syn::Error::new_spanned(
                &meta.path,
                format!("unknown service `{other}`; `services` takes `etcd` and `nats`, e.g. `services(etcd, nats(isolated))`"),
            ))
        }
    };
    let mut isolated = false;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|mode| {
            match path_text(&mode.path).as_str() {
                "isolated" => isolated = true,
                "shared" => isolated = false,
                other => {
                    return Err(syn::Error::new_spanned(
                        &mode.path,
                        format!("unknown service mode `{other}`; write `isolated` (a private instance) or `shared` (the default)"),
                    ))
                }
            }
            Ok(())
        })?;
    }
    Ok(Spanned {
        value: Service { kind, isolated },
        span,
    })
}

/// The option's value, with an error that says what it takes.
fn value<T: syn::parse::Parse>(
    meta: &ParseNestedMeta,
    what: &str,
    example: &str,
) -> syn::Result<T> {
    let name = path_text(&meta.path);
    let help = |span| syn::Error::new(span, format!("`{name}` takes {what}: write `{example}`"));
    let stream = meta.value().map_err(|_| help(meta.path.span()))?;
    stream.parse().map_err(|e: syn::Error| help(e.span()))
}

fn path_text(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    segments.join("::")
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"` -> milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.chars().take_while(|c| c.is_ascii_digit()).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err("it must start with a number".into());
    }
    let number: u64 = number
        .parse()
        .map_err(|_| "the number is too large".to_string())?;
    let per_unit = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err("it needs a unit (ms, s, m or h)".into()),
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    match number.checked_mul(per_unit) {
        Some(0) => Err("it must be greater than zero".into()),
        Some(ms) => Ok(ms),
        None => Err("it is too large".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert!(parse_duration_ms("30").unwrap_err().contains("unit"));
        assert!(parse_duration_ms("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_duration_ms("1d")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration_ms("s").unwrap_err().contains("number"));
    }

    #[test]
    fn options_parse_and_conflict() {
        let o = Options::parse(quote!(
            flavor = "multi_thread",
            worker_threads = 2,
            timeout = "1s"
        ))
        .unwrap();
        assert!(o.flavor.unwrap().value == Flavor::MultiThread);
        assert_eq!(o.worker_threads.unwrap().value, 2);
        assert_eq!(o.timeout_ms.unwrap().value, 1000);
        let err = |t| {
            Options::parse(t)
                .and_then(|o| o.check_combinations())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err(quote!(worker_threads = 2)).contains("multi_thread"));
        assert!(
            err(quote!(flavor = "multi_thread", start_paused = true)).contains("current_thread")
        );
        assert!(err(quote!(timeout = "1s", timeout = "2s")).contains("duplicate option `timeout`"));
        assert!(err(quote!(bogus = 1)).contains("unknown option `bogus`"));
        assert!(err(quote!(services(redis))).contains("unknown service `redis`"));
        assert!(err(quote!(services(etcd, etcd(isolated)))).contains("listed twice"));
        let o = Options::parse(quote!(services(etcd(isolated), nats))).unwrap();
        let got: Vec<(bool, bool)> = o
            .services
            .iter()
            .map(|s| (s.value.kind == ServiceKind::Etcd, s.value.isolated))
            .collect();
        assert_eq!(got, [(true, true), (false, false)]);
    }
}
