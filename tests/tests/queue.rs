//! The queue module against moto's SQS: typed jobs in versioned envelopes, sent in batches of at
//! most ten, each on its own queue, every one received and decoded back.

use std::collections::BTreeSet;

use hub_shared::domain::{DeliveryId, EventId, IntegrationId, JobId, OutgoingWebhookId, TenantId};
use hub_shared::queue::{decode, DeliveryJob, Job, Queues, SyncJob, SyncTrigger};
use hub_tests::spawn_app_with;

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for _ in 0..40 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for message in out.messages() {
            jobs.push(decode(message.body().expect("body")).expect("a job"));
        }
        if jobs.len() >= expected {
            break;
        }
    }
    jobs
}

#[tokio::test]
async fn jobs_sent_in_batches_arrive_on_their_queues_exactly_as_sent() {
    // (no dispatcher polling: this test reads the queues itself)
    let app = spawn_app_with(|options| options.start_workers = false).await;
    let sqs = aws_sdk_sqs::Client::new(&hub_tests::sdk_config());
    let provisioned = &app.stack.provisioned;
    let queues = Queues::new(
        sqs.clone(),
        provisioned.sync_queue_url.clone(),
        provisioned.dispatch_queue_url.clone(),
    );
    let tenant = TenantId::parse("acme").expect("tenant");
    // Given 23 sync jobs and 3 deliveries, interleaved
    let mut jobs = Vec::new();
    for i in 0..26 {
        jobs.push(if i % 9 == 4 {
            Job::Delivery(DeliveryJob {
                tenant_id: tenant.clone(),
                delivery_id: DeliveryId::generate(),
                webhook_id: OutgoingWebhookId::generate(),
                event_id: EventId::generate(),
                attempt: 1,
                not_before: None,
            })
        } else {
            Job::Sync(SyncJob {
                tenant_id: tenant.clone(),
                integration_id: IntegrationId::generate(),
                job_id: JobId::generate(),
                trigger: SyncTrigger::Schedule,
                entities: vec![],
                full: i % 2 == 0,
            })
        });
    }
    // When they are sent
    queues.send(&jobs).await.expect("sent");

    // Then each queue holds exactly its jobs
    let encoded =
        |jobs: &[Job]| -> BTreeSet<String> { jobs.iter().map(hub_shared::queue::encode).collect() };
    let (sync, dispatch): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|job| matches!(job, Job::Sync(_)));
    assert_eq!((sync.len(), dispatch.len()), (23, 3));
    let received_sync = drain(&sqs, &provisioned.sync_queue_url, 23).await;
    let received_dispatch = drain(&sqs, &provisioned.dispatch_queue_url, 3).await;
    assert_eq!(encoded(&received_sync), encoded(&sync));
    assert_eq!(encoded(&received_dispatch), encoded(&dispatch));
    assert_eq!(received_sync.len(), 23, "no job twice");
}
