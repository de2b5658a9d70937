//! The local stack's workers do what EventBridge and Lambda's SQS event source mapping do in AWS:
//! consumers get real `EventBridgeEvent` / `SqsEvent` payloads in a `LambdaEvent` whose context has
//! a deadline, reported batch item failures come back, everything else is deleted, a crashed
//! invocation deletes nothing, and an invocation still running at its deadline is ended.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use hub_local::workers::{
    Context, EventBridgeEvent, InvocationError, LambdaEvent, LambdaFunction, PollOptions,
    SqsBatchResponse, SqsConsumer, SqsEvent, Workers, WorkersError, LOCAL_ACCOUNT_ID,
};
use hub_tests::{sdk_config, unique_name};
use tokio::sync::mpsc;

/// How long any wait in these tests may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);
/// Short long polls so the workers stop quickly.
fn quick_polls() -> PollOptions {
    PollOptions::default().wait_time_seconds(1)
}

struct TestQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    arn: String,
}

/// A fresh queue whose received messages become visible again after `visibility_seconds`.
async fn queue_with_visibility_timeout(visibility_seconds: u32) -> TestQueue {
    let client = aws_sdk_sqs::Client::new(&sdk_config());
    let url = client
        .create_queue()
        .queue_name(unique_name("workers"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .send()
        .await
        .expect("queue created")
        .queue_url
        .expect("queue url");
    let arn = queue_attributes(&client, &url, QueueAttributeName::QueueArn).await;
    TestQueue { client, url, arn }
}

async fn queue_attributes(
    client: &aws_sdk_sqs::Client,
    url: &str,
    name: QueueAttributeName,
) -> String {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut attributes| attributes.remove(&name))
        .expect("attribute present")
}

impl TestQueue {
    /// Sends `bodies`; returns (message id, MD5 of body) by body.
    async fn send(&self, bodies: &[&str]) -> HashMap<String, (String, String)> {
        let mut sent = HashMap::new();
        for body in bodies {
            let output = self
                .client
                .send_message()
                .queue_url(&self.url)
                .message_body(*body)
                .send()
                .await
                .expect("message sent");
            sent.insert(
                body.to_string(),
                (
                    output.message_id.expect("message id"),
                    output.md5_of_message_body.expect("md5"),
                ),
            );
        }
        sent
    }

    /// Messages still on the queue, visible or in flight.
    async fn messages_left(&self) -> usize {
        let mut total = 0;
        for name in [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ] {
            let count = queue_attributes(&self.client, &self.url, name).await;
            total += count.parse::<usize>().expect("a count");
        }
        total
    }
}

/// A consumer function with a timeout no test reaches unless it means to.
fn function(name: &str) -> LambdaFunction {
    LambdaFunction::new(name).with_timeout(PATIENCE)
}

/// An SQS consumer that reports every event it receives and answers with `answer`.
fn recording_consumer<F, Fut>(answer: F) -> (impl SqsConsumer, mpsc::UnboundedReceiver<SqsEvent>)
where
    F: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, InvocationError>> + Send + 'static,
{
    let (consumer, mut invocations) = recording_lambda_consumer(move |event| answer(event.payload));
    let (seen, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(invocation) = invocations.recv().await {
            let _ = seen.send(invocation.payload);
        }
    });
    (consumer, events)
}

/// An SQS consumer that reports every invocation (payload and context) and answers with `answer`.
fn recording_lambda_consumer<F, Fut>(
    answer: F,
) -> (
    impl SqsConsumer,
    mpsc::UnboundedReceiver<LambdaEvent<SqsEvent>>,
)
where
    F: Fn(LambdaEvent<SqsEvent>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, InvocationError>> + Send + 'static,
{
    let (seen, invocations) = mpsc::unbounded_channel();
    let consumer = move |event: LambdaEvent<SqsEvent>| {
        let _ = seen.send(event.clone());
        answer(event)
    };
    (consumer, invocations)
}

/// Receives events until `done` holds for one of them; returns all of them.
async fn events_until(
    events: &mut mpsc::UnboundedReceiver<SqsEvent>,
    mut done: impl FnMut(&SqsEvent) -> bool,
) -> Vec<SqsEvent> {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.recv().await {
            let finished = done(&event);
            all.push(event);
            if finished {
                return;
            }
        }
        panic!("the consumer was dropped before the awaited event");
    })
    .await
    .unwrap_or_else(|_| panic!("awaited event not seen within {PATIENCE:?}; saw {all:#?}"));
    all
}

fn receive_count(event: &SqsEvent, body: &str) -> Option<u32> {
    event
        .records
        .iter()
        .find(|record| record.body.as_deref() == Some(body))
        .and_then(|record| record.attributes.get("ApproximateReceiveCount"))
        .map(|count| count.parse().expect("a count"))
}

fn deliveries_of(events: &[SqsEvent], body: &str) -> usize {
    events
        .iter()
        .flat_map(|event| &event.records)
        .filter(|record| record.body.as_deref() == Some(body))
        .count()
}

#[tokio::test]
async fn a_reported_batch_item_failure_comes_back_and_the_rest_of_the_batch_is_deleted() {
    // Given a queue with three messages, one of which its consumer cannot handle
    let queue = queue_with_visibility_timeout(1).await;
    let sent = queue.send(&["first", "poison", "third"]).await;
    let (consumer, mut events) = recording_consumer(|event: SqsEvent| async move {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            if record.body.as_deref() == Some("poison") {
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
        }
        Ok(response)
    });

    // When the queue is polled until the failed message is delivered a second time
    let workers = Workers::new()
        .poll_queue(
            function("test-consumer"),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    let seen = events_until(&mut events, |event| {
        receive_count(event, "poison") == Some(2)
    })
    .await;
    workers.stop().await.expect("clean stop");

    // Then the consumer saw each message as Lambda's SQS event source would deliver it
    for (body, (message_id, md5)) in &sent {
        let record = seen
            .iter()
            .flat_map(|event| &event.records)
            .find(|record| record.body.as_deref() == Some(body.as_str()))
            .unwrap_or_else(|| panic!("{body} was delivered"));
        assert_eq!(record.message_id.as_ref(), Some(message_id));
        assert_eq!(record.md5_of_body.as_ref(), Some(md5));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(record.event_source_arn.as_ref(), Some(&queue.arn));
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        assert!(record
            .receipt_handle
            .as_deref()
            .is_some_and(|h| !h.is_empty()));
        for attribute in [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        ] {
            assert!(
                record.attributes.contains_key(attribute),
                "{attribute} missing from {:?}",
                record.attributes
            );
        }
    }
    // And only the failed message came back: the others were deleted
    assert_eq!(deliveries_of(&seen, "poison"), 2);
    assert_eq!(deliveries_of(&seen, "first"), 1);
    assert_eq!(deliveries_of(&seen, "third"), 1);
    assert_eq!(queue.messages_left().await, 1);
}

#[tokio::test]
async fn a_crashed_invocation_deletes_nothing() {
    // Given a queue with two messages and a consumer whose every invocation crashes
    let queue = queue_with_visibility_timeout(1).await;
    queue.send(&["one", "two"]).await;
    let (consumer, mut events) = recording_consumer(|_event: SqsEvent| async move {
        Err::<SqsBatchResponse, InvocationError>("the function crashed".into())
    });

    // When the queue is polled until both messages were delivered a second time
    let workers = Workers::new()
        .poll_queue(
            function("crashing-consumer"),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    let mut redelivered = Vec::new();
    events_until(&mut events, |event| {
        for body in ["one", "two"] {
            if receive_count(event, body) == Some(2) && !redelivered.contains(&body) {
                redelivered.push(body);
            }
        }
        redelivered.len() == 2
    })
    .await;
    workers.stop().await.expect("clean stop");

    // Then both are still on the queue
    assert_eq!(queue.messages_left().await, 2);
}

#[tokio::test]
async fn a_panicking_consumer_counts_as_a_crashed_invocation_and_polling_goes_on() {
    // Given a consumer that panics on a message's first delivery and handles it on the second
    let queue = queue_with_visibility_timeout(1).await;
    queue.send(&["flaky"]).await;
    let (consumer, mut events) = recording_consumer(|event: SqsEvent| async move {
        let first_delivery = event.records.iter().any(|record| {
            record
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str)
                == Some("1")
        });
        assert!(!first_delivery, "deliberate panic on the first delivery");
        Ok(SqsBatchResponse::default())
    });

    // When the queue is polled until the message is delivered again
    let workers = Workers::new()
        .poll_queue(
            function("panicking-consumer"),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    events_until(&mut events, |event| {
        receive_count(event, "flaky") == Some(2)
    })
    .await;
    workers.stop().await.expect("the poller survived the panic");

    // Then the second, successful invocation deleted it
    assert_eq!(queue.messages_left().await, 0);
}

#[tokio::test]
async fn the_scheduler_invokes_its_consumer_with_scheduled_events_until_stopped() {
    // Given a consumer scheduled every second
    let (seen, mut events) = mpsc::unbounded_channel::<EventBridgeEvent>();
    let rule = unique_name("tick");
    let workers = Workers::new()
        .schedule(
            function(&rule),
            Duration::from_secs(1),
            move |event: LambdaEvent<EventBridgeEvent>| {
                let _ = seen.send(event.payload);
                async { Ok::<(), InvocationError>(()) }
            },
        )
        .start()
        .await
        .expect("workers start");

    // When two ticks have come
    let mut ticks = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("a tick within the patience")
            .expect("scheduler still running");
        ticks.push(event);
    }
    tokio::time::timeout(PATIENCE, workers.stop())
        .await
        .expect("stop returns promptly")
        .expect("clean stop");

    // Then each was an EventBridge scheduled event of the rule, with its own id
    let rule_arn = format!("arn:aws:events:us-east-1:{LOCAL_ACCOUNT_ID}:rule/{rule}");
    for event in &ticks {
        assert_eq!(event.version.as_deref(), Some("0"));
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
        assert_eq!(event.account.as_deref(), Some(LOCAL_ACCOUNT_ID));
        assert_eq!(event.region.as_deref(), Some("us-east-1"));
        assert_eq!(event.resources, Some(vec![rule_arn.clone()]));
        assert_eq!(event.detail, serde_json::json!({}));
        assert!(event.time.is_some());
    }
    assert_ne!(ticks[0].id, ticks[1].id);
    assert!(ticks[0].time <= ticks[1].time);
    // And after stop the consumer is gone: no further tick can come
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while events.recv().await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the scheduler still holds its consumer after stop"
    );
}

#[tokio::test]
async fn stop_cuts_a_long_poll_short() {
    // Given a poller in a 20 s long poll on an empty queue
    let queue = queue_with_visibility_timeout(30).await;
    let (consumer, _events) =
        recording_consumer(|_event: SqsEvent| async { Ok(SqsBatchResponse::default()) });
    let workers = Workers::new()
        .poll_queue(
            function("idle"),
            &sdk_config(),
            &queue.url,
            PollOptions::default(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // When it is stopped, then it returns without waiting for the poll to end
    tokio::time::timeout(Duration::from_secs(5), workers.stop())
        .await
        .expect("stop does not wait out the long poll")
        .expect("clean stop");
}

#[tokio::test]
async fn workers_refuse_to_start_on_a_queue_that_does_not_exist() {
    // Given a poller registered for a queue moto does not have
    let missing = format!(
        "{}/{LOCAL_ACCOUNT_ID}/{}",
        hub_tests::moto_endpoint(),
        unique_name("missing")
    );
    let (consumer, _events) =
        recording_consumer(|_event: SqsEvent| async { Ok(SqsBatchResponse::default()) });

    // When the workers start
    let result = Workers::new()
        .poll_queue(
            function("orphan"),
            &sdk_config(),
            &missing,
            quick_polls(),
            consumer,
        )
        .start()
        .await;

    // Then they refuse, naming the poller and the queue
    match result {
        Err(WorkersError::QueueArn {
            name, queue_url, ..
        }) => {
            assert_eq!(name, "orphan");
            assert_eq!(queue_url, missing);
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("workers started on a missing queue"),
    }
}

#[tokio::test]
async fn a_schedule_with_a_zero_interval_is_refused() {
    let result = Workers::new()
        .schedule(
            function("never"),
            Duration::ZERO,
            |_event: LambdaEvent<EventBridgeEvent>| async { Ok::<(), InvocationError>(()) },
        )
        .start()
        .await;

    assert!(matches!(
        result,
        Err(WorkersError::ZeroInterval { name }) if name == "never"
    ));
}

#[tokio::test]
async fn each_invocation_gets_a_lambda_context_with_the_functions_deadline() {
    // Given a queue with a message and a consumer function with a 7 s timeout
    let queue = queue_with_visibility_timeout(1).await;
    queue.send(&["twice"]).await;
    let timeout = Duration::from_secs(7);
    let (consumer, mut invocations) = recording_lambda_consumer(|event| async move {
        // Fail the first delivery so that a second invocation comes.
        let mut response = SqsBatchResponse::default();
        if receive_count(&event.payload, "twice") == Some(1) {
            response.add_failure(
                event.payload.records[0]
                    .message_id
                    .clone()
                    .unwrap_or_default(),
            );
        }
        Ok(response)
    });

    // When the queue is polled until the message is delivered twice
    let started = std::time::SystemTime::now();
    let workers = Workers::new()
        .poll_queue(
            LambdaFunction::new("ContextConsumer").with_timeout(timeout),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    let mut seen: Vec<LambdaEvent<SqsEvent>> = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.len() < 2 {
            seen.push(invocations.recv().await.expect("consumer alive"));
        }
    })
    .await
    .expect("two invocations within the patience");
    let stopped = std::time::SystemTime::now();
    workers.stop().await.expect("clean stop");

    // Then each context is what the Lambda runtime builds: its own request id, the function's ARN
    // and configuration, and a deadline of invocation start + the function's timeout
    let contexts: Vec<&Context> = seen.iter().map(|event| &event.context).collect();
    assert_ne!(contexts[0].request_id, contexts[1].request_id);
    for context in contexts {
        assert!(!context.request_id.is_empty());
        assert_eq!(
            context.invoked_function_arn,
            format!("arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT_ID}:function:ContextConsumer")
        );
        assert_eq!(context.env_config.function_name, "ContextConsumer");
        assert!(
            context.deadline() >= started + timeout && context.deadline() <= stopped + timeout,
            "deadline {:?} outside [{:?}, {:?}] + {timeout:?}",
            context.deadline(),
            started,
            stopped
        );
    }
}

#[tokio::test]
async fn an_invocation_still_running_at_its_deadline_is_ended_and_its_batch_comes_back() {
    // Given a consumer with a 1 s timeout that hangs on a message's first delivery
    let queue = queue_with_visibility_timeout(1).await;
    queue.send(&["slow"]).await;
    let finished_first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = finished_first.clone();
    let (consumer, mut events) = recording_consumer(move |event: SqsEvent| {
        let finished = finished.clone();
        async move {
            if receive_count(&event, "slow") == Some(1) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(SqsBatchResponse::default())
        }
    });

    // When the queue is polled until the message is delivered again
    let workers = Workers::new()
        .poll_queue(
            LambdaFunction::new("HangingConsumer").with_timeout(Duration::from_secs(1)),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    events_until(&mut events, |event| receive_count(event, "slow") == Some(2)).await;
    workers.stop().await.expect("clean stop");

    // Then the first invocation was ended at its deadline (it never finished), its message came
    // back, and the second, prompt invocation deleted it
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!finished_first.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(queue.messages_left().await, 0);
}

#[tokio::test]
async fn a_deadline_aware_consumer_hands_back_what_it_cannot_finish_in_time() {
    // Given four messages and a consumer (1 s timeout, 300 ms per message) that stops taking new
    // messages when less than 500 ms remain and reports the rest as batch item failures, as sync
    // continuation does
    let queue = queue_with_visibility_timeout(1).await;
    let bodies = ["m1", "m2", "m3", "m4"];
    queue.send(&bodies).await;
    let (done, mut handled) = mpsc::unbounded_channel::<(String, usize, usize)>();
    let (consumer, _invocations) = recording_lambda_consumer(move |event| {
        let done = done.clone();
        async move {
            let mut response = SqsBatchResponse::default();
            let mut processed = 0;
            for record in &event.payload.records {
                let remaining = event
                    .context
                    .deadline()
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                if remaining < Duration::from_millis(500) {
                    response.add_failure(record.message_id.clone().unwrap_or_default());
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                processed += 1;
                let _ = done.send((
                    record.body.clone().unwrap_or_default(),
                    processed,
                    event.payload.records.len(),
                ));
            }
            Ok(response)
        }
    });

    // When the queue is polled until every message was handled
    let workers = Workers::new()
        .poll_queue(
            LambdaFunction::new("ContinuingConsumer").with_timeout(Duration::from_secs(1)),
            &sdk_config(),
            &queue.url,
            quick_polls(),
            consumer,
        )
        .start()
        .await
        .expect("workers start");
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.len() < bodies.len() {
            seen.push(handled.recv().await.expect("consumer alive"));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not every message handled within {PATIENCE:?}: {seen:?}"));
    workers.stop().await.expect("clean stop");

    // Then no invocation handled a whole batch of more than two, each message was handled exactly
    // once (what was handed back came back), and nothing is left on the queue
    assert!(
        seen.iter().all(|(_, processed, _)| *processed <= 2),
        "{seen:?}"
    );
    let mut handled_bodies: Vec<&str> = seen.iter().map(|(body, _, _)| body.as_str()).collect();
    handled_bodies.sort_unstable();
    assert_eq!(handled_bodies, bodies);
    assert_eq!(queue.messages_left().await, 0);
}
