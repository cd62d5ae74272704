//! Step 2, validation: [`RawOptions::build`] turns the options as written
//! into a [`Config`] of plain values. It is the one place that decides what
//! an option means and whether the options fit together, and it reports
//! every mistake it finds, not only the first.

mod krate;
mod names;
mod runtime;
mod services;
mod timeout;
mod value;

#[cfg(test)]
mod tests;

use syn::Meta;

use crate::config::{self, Config};
use crate::errors::join;
use crate::parse::RawOptions;

impl RawOptions {
    /// The validated configuration, or every error found, in the order the
    /// options are listed here. `is_async`: the test is an `async fn`
    /// (a plain `fn` takes no runtime options).
    pub fn build(&self, is_async: bool) -> syn::Result<Config> {
        let names = names::check(self);
        let runtime = runtime::build(self, is_async);
        let timeout = optional(&self.timeout, timeout::build);
        let services = optional(&self.services, services::build).map(Option::unwrap_or_default);
        let krate = optional(&self.krate, krate::build)
            .map(|krate| krate.unwrap_or_else(config::default_crate));
        let options = join(join(runtime, timeout), join(services, krate));
        let ((runtime, timeout), (services, krate)) = join(names, options)?.1;
        Ok(Config {
            runtime,
            timeout,
            services,
            krate,
        })
    }
}

/// The value of an option that may not be written.
fn optional<T>(
    option: &Option<Meta>,
    build: impl FnOnce(&Meta) -> syn::Result<T>,
) -> syn::Result<Option<T>> {
    option.as_ref().map(build).transpose()
}
