//! Combining errors, so that every mistake in one attribute (and in the
//! function's signature) is reported in one compile, rstest's way, instead
//! of one mistake per edit-compile round.
//!
//! Both helpers keep the errors in the order of their arguments, which is
//! the order the user reads them in.

/// Both values, or the errors of both (in order).
pub fn join<A, B>(a: syn::Result<A>, b: syn::Result<B>) -> syn::Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            Err(first)
        }
    }
}

/// Every value, or every error (in order).
pub fn all<T>(results: impl IntoIterator<Item = syn::Result<T>>) -> syn::Result<Vec<T>> {
    // Not `try_fold`, which would stop at the first error.
    let mut collected = Ok(Vec::new());
    for next in results {
        collected = join(collected, next).map(|(mut values, value)| {
            values.push(value);
            values
        });
    }
    collected
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn err(message: &str) -> syn::Result<u8> {
        Err(syn::Error::new(Span::call_site(), message))
    }

    fn messages(e: syn::Error) -> Vec<String> {
        e.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn join_keeps_both_errors_in_order() {
        assert_eq!(join(Ok(1u8), Ok(2u8)).unwrap(), (1, 2));
        assert_eq!(messages(join(err("a"), Ok(2u8)).unwrap_err()), ["a"]);
        assert_eq!(messages(join(Ok(1u8), err("b")).unwrap_err()), ["b"]);
        assert_eq!(messages(join(err("a"), err("b")).unwrap_err()), ["a", "b"]);
    }

    #[test]
    fn all_collects_every_value_or_every_error() {
        assert_eq!(all([Ok(1u8), Ok(2)]).unwrap(), [1, 2]);
        assert!(all(Vec::<syn::Result<u8>>::new()).unwrap().is_empty());
        assert_eq!(
            messages(all([err("a"), Ok(2), err("c")]).unwrap_err()),
            ["a", "c"]
        );
    }
}
