//! 64 tests in one binary, run in parallel: each takes ports, binds them
//! and holds them a while. A double grant shows up as a bind failure or as
//! a port already marked held by another test.

dynamo_test_suite::port_tests!(
    t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15, t16, t17, t18,
    t19, t20, t21, t22, t23, t24, t25, t26, t27, t28, t29, t30, t31, t32, t33, t34, t35, t36, t37,
    t38, t39, t40, t41, t42, t43, t44, t45, t46, t47, t48, t49, t50, t51, t52, t53, t54, t55, t56,
    t57, t58, t59, t60, t61, t62, t63,
);

/// The marker check itself: a second mark of a held number must fail.
#[test]
#[should_panic(expected = "granted to two tests at once")]
fn the_double_grant_check_fires() {
    let port = dynamo_test::find_free_port().unwrap();
    let _first = dynamo_test_suite::hold(&[port.get()]);
    let _second = dynamo_test_suite::hold(&[port.get()]);
}
