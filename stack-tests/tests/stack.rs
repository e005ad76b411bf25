//! The harness itself: services killed, stopped and started again come back
//! on the same addresses and carry on.

use std::time::Duration;

use reqwest::StatusCode;
use stack_tests::{Api, Service, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_processor_restarts_where_it_was_and_decides_the_orders_queued_meanwhile() {
    let mut stack = Stack::start().await.unwrap();
    let api = Api::new(stack.api_url());
    let admin = api
        .login(&stack.admin_email, &stack.admin_password)
        .await
        .unwrap();
    api.product_with_stock(&admin, "HARNESS-1", 10, 0)
        .await
        .unwrap();
    let customer = api.new_customer().await.unwrap();

    let metrics_before = stack.address(Service::OrderProcessor);
    stack.kill(Service::OrderProcessor).unwrap();
    assert!(!stack.is_running(Service::OrderProcessor));
    assert!(
        stack.metrics(Service::OrderProcessor).await.is_err(),
        "nothing answers where the killed processor was"
    );

    // Accepted while no processor runs, decided once it is back.
    let order = api
        .place_order(&customer, &[("HARNESS-1", 2)])
        .await
        .unwrap();
    stack.start_service(Service::OrderProcessor).await.unwrap();
    assert_eq!(stack.address(Service::OrderProcessor), metrics_before);
    let decided = api
        .wait_decided(&customer, order, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(decided["status"], "confirmed");

    // SIGTERM: the notifier finishes and exits by itself.
    stack.stop(Service::Notifier).await.unwrap();
    assert!(!stack.is_running(Service::Notifier));
    stack.start_service(Service::Notifier).await.unwrap();

    let log = std::fs::read_to_string(stack.log_path(Service::OrderProcessor)).unwrap();
    assert_eq!(
        log.matches("---- stack-tests: starting order-processor ----")
            .count(),
        2,
        "one log file across restarts"
    );
    let ready = reqwest::get(format!("{}/readyz", stack.api_url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}
