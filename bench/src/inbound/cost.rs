//! B1's cost phase: one `standard` webhook whose one action is a `forward` to a local sink.
//! Webhooks are handed to the function's router one at a time (one Lambda execution environment),
//! each timed; then the retry dispatcher's consumer processes them through the local stack's SQS
//! event source mapping (batches of up to 10, one at a time), each batch timed. The requests of
//! each part, the Lambda time and the table's items at the end give the billed units per webhook,
//! priced by [`crate::aws_cost`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use http_body_util::BodyExt;
use hub_local::aws_counter::{AwsExchange, AwsRequestCounter};
use hub_local::lambda::LambdaFunction;
use hub_local::stack::LocalStack;
use hub_local::workers::{LambdaEvent, PollOptions, SqsEvent, Workers};
use hub_shared::services::Services;
use hub_shared::webhooks::sign::{SigningKeys, WebhookSecret};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::json;
use tower::ServiceExt;

use super::{
    create_webhook, round3, setup, signed_request, stack_options, webhook_body, B1Options, Client,
    InboundBenchError, Latency,
};
use crate::aws_cost::{
    billed_ms, cost_per_million, AwsPerOperation, CostInputs, CostTable, ItemSizes,
    LambdaPerOperation, LambdaUsage, TableItems, Usage, PRICES_AS_OF, REGION,
};
use crate::sink::{Sink, SinkCounts};

const ACCEPTED: u16 = 202;
/// The cost phase's webhooks accepted and processed before anything is counted (the first fills
/// each function's caches).
const COST_WARMUP: usize = 3;
/// How long the processing may take.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);
const SINK_SEED: u64 = 0x0b1;
/// The event source mapping's long poll (the measured processing), and the warm-up's short one.
const POLL_WAIT_SECONDS: u8 = 20;
const WARMUP_POLL_WAIT_SECONDS: u8 = 1;
const ACCEPT_FUNCTION: &str = "InboundWebhookFunction";
const PROCESS_FUNCTION: &str = "RetryDispatcherFunction";
const COST_ACTIONS: &str = "one forward (Standard Webhooks signed POST of the raw body) to a local sink; the tenant has no outgoing webhooks, so webhook.received is emitted to none";

/// The cost phase: what was measured, and the price of a million.
#[derive(Debug, Clone, Serialize)]
pub struct CostRun {
    pub actions: &'static str,
    pub prices_as_of: &'static str,
    pub region: &'static str,
    /// Webhooks accepted while counted (after the warm-up).
    pub webhooks: usize,
    /// Events processed while counted.
    pub events_processed: u64,
    pub batches: u64,
    pub mean_batch_size: f64,
    /// Accepted and processed before the counting started (their forwards are in `sink`).
    pub warmup_events: usize,
    pub sink: SinkCounts,
    pub accept: PhaseCost,
    pub process: PhaseCost,
    /// The table's items read back at the end (their sizes price the updates), by kind.
    pub table_items: usize,
    pub item_sizes: BTreeMap<String, ItemSizes>,
    /// Everything one webhook costs, accepted and processed.
    pub per_webhook: AwsPerOperation,
    pub cost: CostTable,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseCost {
    pub function: &'static str,
    pub lambda: LambdaUsage,
    pub lambda_per_operation: LambdaPerOperation,
    /// Handler time of each invocation (accept: one webhook; process: one batch).
    pub invocation: Latency,
    pub usage: Usage,
    pub per_operation: AwsPerOperation,
}

#[derive(Default)]
struct Batches {
    durations: Vec<Duration>,
    records: u64,
    processed: u64,
}

pub(super) async fn run_cost(
    options: &B1Options,
    sdk: &SdkConfig,
    counter: &AwsRequestCounter,
    run_id: &str,
    progress: fn(&str),
) -> Result<CostRun, InboundBenchError> {
    let stack_options = stack_options(&format!("b1-{run_id}-cost"));
    let stack = LocalStack::start(sdk, stack_options.clone()).await?;
    let client: Client = HttpClient::builder(TokioExecutor::new()).build_http();
    let placeholder = WebhookSecret::parse(hub_shared::webhooks::sign::generate_secret().expose())
        .map_err(setup("a placeholder secret"))?;
    let sink = Sink::start(SigningKeys::new(placeholder), 0.0, SINK_SEED)
        .await
        .map_err(setup("the sink"))?;
    let webhook = create_webhook(
        &client,
        &stack,
        &stack_options,
        json!({"name": "B1 cost", "verification": {"scheme": "standard"},
               "actions": [{"type": "forward", "config": {"forwardUrl": sink.url()}}]}),
    )
    .await?;
    let forward_secret = webhook
        .forward_secret
        .as_deref()
        .ok_or_else(|| InboundBenchError::Setup("the webhook has no forwardSecret".into()))?;
    sink.verify_with(SigningKeys::new(
        WebhookSecret::parse(forward_secret).map_err(setup("the forward secret"))?,
    ));

    // Accept: the function's router, one webhook at a time, each invocation timed.
    let services =
        Services::new(stack.config.clone(), sdk).map_err(setup("the function's services"))?;
    let router = inbound_webhook::app(inbound_webhook::InboundState::new(services.clone()));
    let accept_one = |n: u64| {
        let router = router.clone();
        let request = signed_request(
            &webhook.path,
            &webhook.key,
            &format!("msg_b1_cost_{n}"),
            webhook_body(n),
        );
        async move {
            let request = request.ok_or_else(|| "the request could not be built".to_string())?;
            let started = Instant::now();
            let response = router.oneshot(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            Ok::<_, String>((status, started.elapsed()))
        }
    };
    // The dispatcher is a function of its own: its own services, so its own caches.
    let dispatcher_services =
        Services::new(stack.config.clone(), sdk).map_err(setup("the dispatcher's services"))?;
    let consumer = retry_dispatcher::Consumer::new(&dispatcher_services)
        .map_err(setup("the dispatcher's consumer"))?;
    let process_function =
        LambdaFunction::from_template(PROCESS_FUNCTION).map_err(setup("the template"))?;
    let queue_url = stack.provisioned.dispatch_queue_url.clone();
    let batches = Arc::new(Mutex::new(Batches::default()));

    // Warm-up, not counted: both functions' caches filled, as on a warm function.
    let mut first_error = None;
    for n in 0..COST_WARMUP as u64 {
        match accept_one(n).await {
            Ok((ACCEPTED, _)) => {}
            Ok((status, _)) => {
                first_error.get_or_insert(format!("answered {status}"));
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(InboundBenchError::Setup(format!(
            "a warm-up webhook was not accepted: {error}"
        )));
    }
    process_events(
        sdk,
        &queue_url,
        &process_function,
        &consumer,
        &batches,
        COST_WARMUP as u64,
        WARMUP_POLL_WAIT_SECONDS,
    )
    .await?;
    // A long poll cut short goes on in moto and would take (and hide) a message sent now.
    tokio::time::sleep(Duration::from_secs(u64::from(WARMUP_POLL_WAIT_SECONDS) + 1)).await;
    take(&batches);
    counter.reset();

    progress(&format!(
        "B1 cost: {} webhooks to the function, one at a time",
        options.cost_webhooks
    ));
    let mut first_error = None;
    let mut accept_durations = Vec::with_capacity(options.cost_webhooks);
    for n in 0..options.cost_webhooks as u64 {
        match accept_one(COST_WARMUP as u64 + n).await {
            Ok((status, elapsed)) => {
                accept_durations.push(elapsed);
                if status != ACCEPTED {
                    first_error.get_or_insert(format!("answered {status}"));
                }
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(InboundBenchError::Setup(format!(
            "a cost-phase webhook was not accepted: {error}"
        )));
    }
    let accept_exchanges = counter.exchanges();
    counter.reset();

    progress(&format!(
        "B1 cost: processing {} events (batches of up to 10)",
        options.cost_webhooks
    ));
    process_events(
        sdk,
        &queue_url,
        &process_function,
        &consumer,
        &batches,
        options.cost_webhooks as u64,
        POLL_WAIT_SECONDS,
    )
    .await?;
    // The poller's start-up (GetQueueAttributes) is setup, not processing.
    let process_exchanges: Vec<AwsExchange> = counter
        .exchanges()
        .into_iter()
        .filter(|exchange| exchange.call != "sqs:GetQueueAttributes")
        .collect();
    counter.reset();
    let table = scan_table(sdk, counter, &stack.provisioned.table_name).await?;
    counter.reset();
    let _ = stack.stop().await;

    let batches = take(&batches);
    let webhooks = options.cost_webhooks as u64;
    let accept_function =
        LambdaFunction::from_template(ACCEPT_FUNCTION).map_err(setup("the template"))?;
    let accept_usage = Usage::of(&accept_exchanges, &table);
    let accept_lambda = LambdaUsage {
        invocations: accept_durations.len() as u64,
        billed_ms: accept_durations.iter().copied().map(billed_ms).sum(),
        memory_mb: accept_function.memory_size_mb(),
    };
    let process_usage = Usage::of(&process_exchanges, &table);
    let process_lambda = LambdaUsage {
        invocations: batches.durations.len() as u64,
        billed_ms: batches.durations.iter().copied().map(billed_ms).sum(),
        memory_mb: process_function.memory_size_mb(),
    };
    let events = batches.processed;
    let accept = PhaseCost {
        function: "inbound-webhook",
        lambda: accept_lambda,
        lambda_per_operation: accept_lambda.per(webhooks),
        invocation: Latency::of(&accept_durations),
        per_operation: accept_usage.per(webhooks),
        usage: accept_usage,
    };
    let process = PhaseCost {
        function: "retry-dispatcher",
        lambda: process_lambda,
        lambda_per_operation: process_lambda.per(events),
        invocation: Latency::of(&batches.durations),
        per_operation: process_usage.per(events),
        usage: process_usage,
    };
    let per_webhook = accept.per_operation.clone() + process.per_operation.clone();
    let cost = cost_per_million(&CostInputs {
        api_requests: 1.0,
        lambda: vec![
            (accept.function.to_string(), accept.lambda_per_operation),
            (process.function.to_string(), process.lambda_per_operation),
        ],
        aws: per_webhook.clone(),
    });
    let batch_count = batches.durations.len() as u64;
    Ok(CostRun {
        actions: COST_ACTIONS,
        prices_as_of: PRICES_AS_OF,
        region: REGION,
        webhooks: options.cost_webhooks,
        events_processed: events,
        batches: batch_count,
        mean_batch_size: if batch_count > 0 {
            round3(batches.records as f64 / batch_count as f64)
        } else {
            0.0
        },
        warmup_events: COST_WARMUP,
        sink: sink.counts(),
        accept,
        process,
        table_items: table.len(),
        item_sizes: table.sizes_by_kind(),
        per_webhook,
        cost,
    })
}

/// The local stack's SQS event source mapping hands the dispatch queue to `consumer`, one batch
/// at a time, until `events` records were processed (none reported failed); each batch is timed.
async fn process_events(
    sdk: &SdkConfig,
    queue_url: &str,
    function: &LambdaFunction,
    consumer: &retry_dispatcher::Consumer,
    batches: &Arc<Mutex<Batches>>,
    events: u64,
    poll_wait_seconds: u8,
) -> Result<(), InboundBenchError> {
    let timed = {
        let (consumer, batches) = (consumer.clone(), Arc::clone(batches));
        move |event: LambdaEvent<SqsEvent>| {
            let (consumer, batches) = (consumer.clone(), Arc::clone(&batches));
            async move {
                let records = event.payload.records.len() as u64;
                let started = Instant::now();
                let answer = retry_dispatcher::handle(consumer, event).await;
                let elapsed = started.elapsed();
                let failed = answer
                    .as_ref()
                    .map_or(records, |answer| answer.batch_item_failures.len() as u64);
                if let Ok(mut batches) = batches.lock() {
                    batches.durations.push(elapsed);
                    batches.records += records;
                    batches.processed += records - failed;
                }
                answer
            }
        }
    };
    let workers = Workers::new()
        .poll_queue(
            function.clone(),
            sdk,
            queue_url,
            PollOptions::default().wait_time_seconds(poll_wait_seconds),
            timed,
        )
        .start()
        .await
        .map_err(setup("the queue poller"))?;
    let processed = || batches.lock().map_or(0, |batches| batches.processed);
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    while processed() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers.stop().await.map_err(setup("the queue poller"))?;
    if processed() < events {
        return Err(InboundBenchError::Incomplete {
            processed: processed(),
            events,
        });
    }
    Ok(())
}

fn take(batches: &Mutex<Batches>) -> Batches {
    batches
        .lock()
        .map(|mut batches| std::mem::take(&mut *batches))
        .unwrap_or_default()
}

/// Every item of `table`, read through the counter so their sizes come from the same wire JSON the
/// requests were priced from (the caller drops these requests from the counts).
async fn scan_table(
    sdk: &SdkConfig,
    counter: &AwsRequestCounter,
    table: &str,
) -> Result<TableItems, InboundBenchError> {
    counter.reset();
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| setup("Scan")(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let pages: Vec<AwsExchange> = counter
        .exchanges()
        .into_iter()
        .filter(|exchange| exchange.call == "dynamodb:Scan")
        .collect();
    Ok(TableItems::from_scan_pages(
        pages.iter().map(|page| page.response.as_ref()),
    ))
}

impl CostRun {
    /// The table `make bench` prints.
    pub fn table(&self) -> String {
        let cost = self;
        let mut out = String::new();
        out.push_str(&format!(
            "Cost of one million inbound webhooks, accepted and processed ({} list prices of {}); action: {}\n",
            cost.region, cost.prices_as_of, cost.actions
        ));
        out.push_str(&format!(
            "measured: {} accepts one at a time (handler p50 {:.3} ms, {:.2} billed ms each), {} events in {} batches (mean {:.1}; batch p50 {:.3} ms, {:.2} billed ms per event); forwards delivered {} (the {} warm-up events' included), invalid signatures {}\n",
            cost.webhooks,
            cost.accept.invocation.p50_ms,
            cost.accept.lambda_per_operation.billed_ms,
            cost.events_processed,
            cost.batches,
            cost.mean_batch_size,
            cost.process.invocation.p50_ms,
            cost.process.lambda_per_operation.billed_ms,
            cost.sink.delivered,
            cost.warmup_events,
            cost.sink.invalid_signatures
        ));
        out.push_str("requests per webhook:");
        for (call, count) in &cost.per_webhook.requests {
            out.push_str(&format!(" {call} {count:.3};"));
        }
        out.push_str(&format!(
            " (idle empty receives excluded: {})\n",
            cost.process.usage.sqs_empty_receives
        ));
        out.push_str("item sizes at the end:");
        for (kind, sizes) in &cost.item_sizes {
            out.push_str(&format!(
                " {kind}: {} x {}-{} B ({} WRU{});",
                sizes.items,
                sizes.min_bytes,
                sizes.max_bytes,
                sizes.write_units,
                if sizes.indexed { ", indexed" } else { "" }
            ));
        }
        out.push('\n');
        out.push_str(&self.cost.table());
        out
    }
}
