//! The expansion, compared with the expected wrapper written out with
//! `quote!`. Both sides are pretty-printed (prettyplease) so that a failure
//! shows a readable diff; layout does not matter, every token does. A change
//! to the expansion must change these tests: it is what the runtime's
//! `__private` items are called with.

use proc_macro2::TokenStream;
use quote::quote;

use crate::entry;

fn pretty(tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("not a file ({e}): {tokens}"),
    }
}

#[track_caller]
fn assert_expands(args: TokenStream, item: TokenStream, expected: TokenStream) {
    let got = pretty(entry::dynamo_test(args, item));
    let expected = pretty(expected);
    assert!(
        got == expected,
        "expansion changed\n--- got\n{got}\n--- expected\n{expected}"
    );
}

/// The `TestConfig` of a test named `t` with no options.
fn default_config() -> TokenStream {
    quote! {
        ::dynamo_test::__private::TestConfig {
            name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
            timeout: ::core::option::Option::None,
            flavor: ::dynamo_test::__private::Flavor::CurrentThread,
            start_paused: false,
            services: &[],
            case: false,
            should_panic: false,
        }
    }
}

/// What injecting one parameter named `name` of type `ty` expands to.
fn injection(var: TokenStream, ty: TokenStream, name: &str) -> TokenStream {
    quote! {
        let #var = match <#ty as ::dynamo_test::__private::Inject>::inject(&__dynamo_ctx, #name).await {
            ::core::result::Result::Ok(v) => v,
            ::core::result::Result::Err(e) => return ::core::result::Result::Err(
                ::dynamo_test::__private::Error::Inject {
                    param: ::std::string::String::from(#name),
                    source: ::std::boxed::Box::new(e),
                }
            ),
        };
    }
}

#[test]
fn a_plain_fn() {
    let config = default_config();
    assert_expands(
        quote!(),
        quote!(
            fn t() {}
        ),
        quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            fn t() {
                fn __dynamo_test_body() {}
                ::dynamo_test::__private::run_sync(
                    #config,
                    |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok(((), __dynamo_ctx))
                    },
                    |((), __dynamo_ctx)| {
                        let _ = &__dynamo_ctx;
                        {
                            let __dynamo_result = __dynamo_test_body();
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        }
                    },
                )
            }
        },
    );
}

#[test]
fn a_plain_fn_with_a_timeout_and_parameters() {
    let lets = [
        injection(quote!(__dynamo_arg_0), quote!(u16), "api"),
        injection(quote!(mut __dynamo_arg_1), quote!(Counter), "counter"),
        injection(quote!(__dynamo_arg_2), quote!(TestContext), "ctx"),
    ];
    assert_expands(
        quote!(timeout = "5s"),
        quote!(
            #[ignore]
            pub fn t(api: u16, counter: &mut Counter, ctx: &TestContext) {
                body();
            }
        ),
        quote! {
            #[ignore]
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            pub fn t() {
                fn __dynamo_test_body(api: u16, counter: &mut Counter, ctx: &TestContext) { body(); }
                ::dynamo_test::__private::run_sync_with_timeout(
                    ::dynamo_test::__private::TestConfig {
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
                        timeout: ::core::option::Option::Some(::dynamo_test::__private::Duration::from_millis(5000)),
                        flavor: ::dynamo_test::__private::Flavor::CurrentThread,
                        start_paused: false,
                        services: &[],
                        case: false,
                        should_panic: false,
                    },
                    |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        #(#lets)*
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok(
                            ((__dynamo_arg_0, __dynamo_arg_1, __dynamo_arg_2,), __dynamo_ctx)
                        )
                    },
                    |((__dynamo_arg_0, mut __dynamo_arg_1, __dynamo_arg_2,), __dynamo_ctx)| {
                        let _ = &__dynamo_ctx;
                        {
                            let __dynamo_result = __dynamo_test_body(__dynamo_arg_0, &mut __dynamo_arg_1, &__dynamo_arg_2);
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        }
                    },
                )
            }
        },
    );
}

#[test]
fn an_async_fn_with_every_option() {
    assert_expands(
        quote!(
            flavor = "multi_thread",
            worker_threads = 2,
            start_paused = false,
            timeout = "1m 30s",
            services(etcd, nats(isolated))
        ),
        quote!(
            async fn t() {}
        ),
        quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            fn t() {
                async fn __dynamo_test_body() {}
                ::dynamo_test::__private::run_async_with_timeout(
                    ::dynamo_test::__private::TestConfig {
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
                        timeout: ::core::option::Option::Some(::dynamo_test::__private::Duration::from_millis(90000)),
                        flavor: ::dynamo_test::__private::Flavor::MultiThread {
                            worker_threads: ::core::option::Option::Some(2usize)
                        },
                        start_paused: false,
                        services: &[
                            ::dynamo_test::__private::ServiceRequest {
                                kind: ::dynamo_test::__private::ServiceKind::Etcd,
                                mode: ::dynamo_test::__private::Mode::Shared,
                                jetstream: true,
                            },
                            ::dynamo_test::__private::ServiceRequest {
                                kind: ::dynamo_test::__private::ServiceKind::Nats,
                                mode: ::dynamo_test::__private::Mode::Isolated,
                                jetstream: true,
                            }
                        ],
                        case: false,
                        should_panic: false,
                    },
                    |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                            let __dynamo_result = __dynamo_test_body().await;
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        })
                    }
                )
            }
        },
    );
}

#[test]
fn an_async_fn_on_a_paused_clock_and_default_workers() {
    let expected_config = |flavor: TokenStream, start_paused: bool| {
        quote! {
            ::dynamo_test::__private::TestConfig {
                name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
                timeout: ::core::option::Option::None,
                flavor: #flavor,
                start_paused: #start_paused,
                services: &[],
                case: false,
                should_panic: false,
            }
        }
    };
    let cases = [
        (
            quote!(start_paused = true),
            expected_config(
                quote!(::dynamo_test::__private::Flavor::CurrentThread),
                true,
            ),
        ),
        (
            quote!(flavor = "multi_thread"),
            expected_config(
                quote!(::dynamo_test::__private::Flavor::MultiThread {
                    worker_threads: ::core::option::Option::None
                }),
                false,
            ),
        ),
    ];
    for (args, config) in cases {
        assert_expands(
            args,
            quote!(
                async fn t() {}
            ),
            quote! {
                #[cfg_attr(test, ::core::prelude::v1::test)]
                #[cfg_attr(not(test), allow(dead_code))]
                fn t() {
                    async fn __dynamo_test_body() {}
                    ::dynamo_test::__private::run_async(#config, |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                            let __dynamo_result = __dynamo_test_body().await;
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        })
                    })
                }
            },
        );
    }
}

#[test]
fn a_result_return() {
    let config = default_config();
    assert_expands(
        quote!(),
        quote!(
            async fn t() -> Result<(), String> {
                Ok(())
            }
        ),
        quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            fn t() {
                async fn __dynamo_test_body() -> Result<(), String> { Ok(()) }
                ::dynamo_test::__private::run_async(#config, |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                    ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                    ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                        let __dynamo_result = __dynamo_test_body().await;
                        ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                    })
                })
            }
        },
    );
}

/// Each kind of parameter, alone in an async test: how it is injected and
/// how the body receives it.
#[test]
fn each_parameter_kind() {
    let cases = [
        // (parameter, the injection, the argument)
        (
            quote!(api: u16),
            injection(quote!(__dynamo_arg_0), quote!(u16), "api"),
            quote!(__dynamo_arg_0),
        ),
        (
            quote!(api: Port),
            injection(quote!(__dynamo_arg_0), quote!(Port), "api"),
            quote!(__dynamo_arg_0),
        ),
        (
            quote!(db: my::Fixture),
            injection(quote!(__dynamo_arg_0), quote!(my::Fixture), "db"),
            quote!(__dynamo_arg_0),
        ),
        (
            quote!(db: &Fixture),
            injection(quote!(__dynamo_arg_0), quote!(Fixture), "db"),
            quote!(&__dynamo_arg_0),
        ),
        (
            quote!(db: &mut Fixture),
            injection(quote!(mut __dynamo_arg_0), quote!(Fixture), "db"),
            quote!(&mut __dynamo_arg_0),
        ),
        (
            quote!(ctx: &TestContext),
            injection(quote!(__dynamo_arg_0), quote!(TestContext), "ctx"),
            quote!(&__dynamo_arg_0),
        ),
        (
            quote!(ctx: TestContext),
            injection(quote!(__dynamo_arg_0), quote!(TestContext), "ctx"),
            quote!(__dynamo_arg_0),
        ),
        (
            quote!(_: u16),
            injection(quote!(__dynamo_arg_0), quote!(u16), "_0"),
            quote!(__dynamo_arg_0),
        ),
    ];
    let config = default_config();
    for (param, injection, arg) in cases {
        assert_expands(
            quote!(),
            quote!(async fn t(#param) {}),
            quote! {
                #[cfg_attr(test, ::core::prelude::v1::test)]
                #[cfg_attr(not(test), allow(dead_code))]
                fn t() {
                    async fn __dynamo_test_body(#param) {}
                    ::dynamo_test::__private::run_async(#config, |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        #injection
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                            let __dynamo_result = __dynamo_test_body(#arg).await;
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        })
                    })
                }
            },
        );
    }
}

#[test]
fn parameters_keep_their_order() {
    let lets = [
        injection(quote!(__dynamo_arg_0), quote!(TestContext), "ctx"),
        injection(quote!(__dynamo_arg_1), quote!(u16), "api"),
        injection(quote!(mut __dynamo_arg_2), quote!(Fixture), "db"),
    ];
    let config = default_config();
    assert_expands(
        quote!(),
        quote!(
            async fn t(ctx: &TestContext, api: u16, db: &mut Fixture) {}
        ),
        quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            fn t() {
                async fn __dynamo_test_body(ctx: &TestContext, api: u16, db: &mut Fixture) {}
                ::dynamo_test::__private::run_async(#config, |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                    #(#lets)*
                    ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                    ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                        let __dynamo_result = __dynamo_test_body(&__dynamo_arg_0, __dynamo_arg_1, &mut __dynamo_arg_2).await;
                        ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                    })
                })
            }
        },
    );
}

/// `crate = "..."` renames every path the expansion names.
#[test]
fn a_renamed_crate_is_the_only_crate_named() {
    let got = pretty(entry::dynamo_test(
        quote!(crate = "my::dt", timeout = "1s", services(etcd)),
        quote!(
            async fn t(api: u16) {}
        ),
    ));
    let private = got.matches("__private").count();
    assert!(private > 0);
    assert_eq!(got.matches("my::dt::__private").count(), private, "{got}");
    assert!(!got.contains("::dynamo_test::"), "{got}");
}

#[test]
fn a_cluster_and_nats_without_jetstream() {
    assert_expands(
        quote!(services(etcd(cluster = 3), nats(no_jetstream))),
        quote!(
            async fn t() {}
        ),
        quote! {
            #[cfg_attr(test, ::core::prelude::v1::test)]
            #[cfg_attr(not(test), allow(dead_code))]
            fn t() {
                async fn __dynamo_test_body() {}
                ::dynamo_test::__private::run_async(
                    ::dynamo_test::__private::TestConfig {
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
                        timeout: ::core::option::Option::None,
                        flavor: ::dynamo_test::__private::Flavor::CurrentThread,
                        start_paused: false,
                        services: &[
                            ::dynamo_test::__private::ServiceRequest {
                                kind: ::dynamo_test::__private::ServiceKind::Etcd,
                                mode: ::dynamo_test::__private::Mode::Cluster(3u8),
                                jetstream: true,
                            },
                            ::dynamo_test::__private::ServiceRequest {
                                kind: ::dynamo_test::__private::ServiceKind::Nats,
                                mode: ::dynamo_test::__private::Mode::Isolated,
                                jetstream: false,
                            }
                        ],
                        case: false,
                        should_panic: false,
                    },
                    |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                            let __dynamo_result = __dynamo_test_body().await;
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        })
                    }
                )
            }
        },
    );
}

/// Under `#[rstest]`: no test attribute (rstest gives each case one), the
/// rstest parameters stay the wrapper's, with their attributes, and move
/// into the body, between the injected ones, in the order written.
#[test]
fn an_async_rstest_function_with_a_timeout() {
    let lets = [
        injection(quote!(__dynamo_arg_1), quote!(TestContext), "ctx"),
        injection(quote!(__dynamo_arg_3), quote!(ServicePorts), "ports"),
    ];
    assert_expands(
        quote!(timeout = "60s"),
        quote!(
            #[rstest]
            #[case::etcd_nats(Discovery::Etcd, Plane::Nats)]
            #[case::file_tcp(Discovery::File, Plane::Tcp)]
            async fn matrix(
                #[case] d: Discovery,
                ctx: &TestContext,
                #[case] mut p: Plane,
                ports: ServicePorts,
            ) -> Result<(), Error> {
                Ok(())
            }
        ),
        quote! {
            #[rstest]
            #[case::etcd_nats(Discovery::Etcd, Plane::Nats)]
            #[case::file_tcp(Discovery::File, Plane::Tcp)]
            fn matrix(#[case] d: Discovery, #[case] p: Plane) {
                async fn __dynamo_test_body(
                    d: Discovery,
                    ctx: &TestContext,
                    mut p: Plane,
                    ports: ServicePorts,
                ) -> Result<(), Error> {
                    Ok(())
                }
                ::dynamo_test::__private::run_async_with_timeout(
                    ::dynamo_test::__private::TestConfig {
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(matrix)),
                        timeout: ::core::option::Option::Some(::dynamo_test::__private::Duration::from_millis(60000)),
                        flavor: ::dynamo_test::__private::Flavor::CurrentThread,
                        start_paused: false,
                        services: &[],
                        case: true,
                        should_panic: false,
                    },
                    move |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        #(#lets)*
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok({
                            let __dynamo_result = __dynamo_test_body(d, &__dynamo_arg_1, p, __dynamo_arg_3).await;
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        })
                    }
                )
            }
        },
    );
}

/// A plain fn: the case's values move into the body's closure; setup hands
/// it the injected values only.
#[test]
fn a_plain_rstest_function_with_value_lists() {
    let lets = [injection(
        quote!(mut __dynamo_arg_1),
        quote!(Counter),
        "counter",
    )];
    assert_expands(
        quote!(),
        quote!(
            #[rstest::rstest]
            #[ignore]
            pub fn t(#[values(1, 2)] n: u32, counter: &mut Counter, #[values("a", "b")] s: &str) {
                body(n, s);
            }
        ),
        quote! {
            #[rstest::rstest]
            #[ignore]
            pub fn t(#[values(1, 2)] n: u32, #[values("a", "b")] s: &str) {
                fn __dynamo_test_body(n: u32, counter: &mut Counter, s: &str) {
                    body(n, s);
                }
                ::dynamo_test::__private::run_sync(
                    ::dynamo_test::__private::TestConfig {
                        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
                        timeout: ::core::option::Option::None,
                        flavor: ::dynamo_test::__private::Flavor::CurrentThread,
                        start_paused: false,
                        services: &[],
                        case: true,
                        should_panic: false,
                    },
                    |__dynamo_ctx: ::dynamo_test::__private::TestContext| async move {
                        #(#lets)*
                        ::dynamo_test::__private::enter_body(&__dynamo_ctx);
                        ::core::result::Result::<_, ::dynamo_test::__private::Error>::Ok(((__dynamo_arg_1,), __dynamo_ctx))
                    },
                    move |((mut __dynamo_arg_1,), __dynamo_ctx)| {
                        let _ = &__dynamo_ctx;
                        {
                            let __dynamo_result = __dynamo_test_body(n, &mut __dynamo_arg_1, s);
                            ::dynamo_test::__private::TestResult::into_outcome(__dynamo_result)
                        }
                    },
                )
            }
        },
    );
}
