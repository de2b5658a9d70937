//! What AWS charges for the requests the local stack made: the exchanges an
//! [`AwsRequestCounter`](hub_local::aws_counter::AwsRequestCounter) kept, turned into billed units
//! (DynamoDB request units from item sizes, SQS requests in 64 KB chunks, KMS and S3 requests), and
//! the list price of one million of an operation (docs/benchmarks.md, "Cost of one million inbound
//! webhooks", has the formula).

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hub_local::aws_counter::AwsExchange;
use hub_shared::store::keys::{GSI1_PK, GSI1_SK, PK, SK};
use serde::Serialize;
use serde_json::{Map, Value};

/// us-east-1 list prices, as of [`PRICES_AS_OF`] (the AWS pricing pages of each service).
pub const PRICES_AS_OF: &str = "2026-12-01";
pub const REGION: &str = "us-east-1";
/// API Gateway HTTP API, per million requests (first 300 million a month).
pub const API_GATEWAY_HTTP_PER_MILLION: f64 = 1.00;
/// Lambda on arm64, per GB-second (first 7.5 billion GB-s a month) and per million requests.
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
/// DynamoDB on-demand, per million write and read request units.
pub const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
pub const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
/// SQS standard queues, per million requests (each 64 KB chunk of a payload is one request).
pub const SQS_PER_MILLION_REQUESTS: f64 = 0.40;
/// KMS, per 10,000 requests.
pub const KMS_PER_10K_REQUESTS: f64 = 0.03;
/// S3 Standard, per 1,000 PUT and per 1,000 GET requests.
pub const S3_PUT_PER_1K: f64 = 0.005;
pub const S3_GET_PER_1K: f64 = 0.0004;

const WRITE_UNIT_BYTES: u64 = 1024;
const READ_UNIT_BYTES: u64 = 4096;
const SQS_CHUNK_BYTES: usize = 64 * 1024;

/// The size DynamoDB bills for an item, by the documented rule: each attribute's name (UTF-8 bytes)
/// plus its value. `item` is the wire JSON of an item (`{"pk": {"S": "..."}, ...}`).
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// A value's size: strings their UTF-8 bytes, binaries their bytes, numbers 1 byte per two
/// significant digits plus 1, booleans and null 1 byte, lists and maps 3 bytes plus 1 byte per
/// element plus the elements (a map's elements with their names), sets the sum of their elements.
pub fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|typed| typed.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len() as u64,
        ("N", Value::String(n)) => number_size(n),
        ("B", Value::String(b)) => binary_size(b),
        ("BOOL" | "NULL", _) => 1,
        ("SS", Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map_or(0, |s| s.len() as u64))
            .sum(),
        ("NS", Value::Array(items)) => items
            .iter()
            .map(|n| n.as_str().map_or(0, number_size))
            .sum(),
        ("BS", Value::Array(items)) => items
            .iter()
            .map(|b| b.as_str().map_or(0, binary_size))
            .sum(),
        ("L", Value::Array(items)) => {
            3 + items.iter().map(|item| 1 + value_size(item)).sum::<u64>()
        }
        ("M", Value::Object(map)) => {
            3 + map
                .iter()
                .map(|(name, item)| 1 + name.len() as u64 + value_size(item))
                .sum::<u64>()
        }
        _ => 0,
    }
}

fn number_size(n: &str) -> u64 {
    let digits: String = n
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.div_ceil(2) + 1
}

fn binary_size(base64: &str) -> u64 {
    STANDARD
        .decode(base64)
        .map_or(base64.len() as u64 * 3 / 4, |bytes| bytes.len() as u64)
}

/// Write request units of one write of an item of `size` bytes: 1 per KB, rounded up.
pub fn write_units(size: u64) -> u64 {
    size.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read request units of reading `size` bytes: 1 per 4 KB rounded up, half when eventually
/// consistent.
pub fn read_units(size: u64, consistent: bool) -> f64 {
    let units = size.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// The items of a table as they are at the end of a phase, by key: what an UpdateItem wrote is
/// priced at the item's size there (the request carries only the change).
#[derive(Debug, Default)]
pub struct TableItems {
    items: HashMap<(String, String), StoredItem>,
}

#[derive(Debug, Clone, Copy)]
struct StoredItem {
    size: u64,
    indexed: bool,
}

impl TableItems {
    /// From the wire JSON answers of a Scan (one per page).
    pub fn from_scan_pages<'a>(pages: impl IntoIterator<Item = &'a [u8]>) -> TableItems {
        let mut items = HashMap::new();
        for page in pages {
            let Ok(page) = serde_json::from_slice::<Value>(page) else {
                continue;
            };
            for item in page["Items"].as_array().into_iter().flatten() {
                if let (Some(item), Some(key)) = (item.as_object(), key_of(item)) {
                    items.insert(key, stored(item));
                }
            }
        }
        TableItems { items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Item sizes by kind of item: the key's tags with the ids left out (`TENANT#WHEVT EVT`).
    pub fn sizes_by_kind(&self) -> BTreeMap<String, ItemSizes> {
        let mut kinds: BTreeMap<String, ItemSizes> = BTreeMap::new();
        for ((pk, sk), item) in &self.items {
            let sizes = kinds
                .entry(format!("{} {}", tags(pk), tags(sk)))
                .or_insert(ItemSizes {
                    items: 0,
                    min_bytes: u64::MAX,
                    max_bytes: 0,
                    write_units: 0,
                    indexed: false,
                });
            sizes.items += 1;
            sizes.min_bytes = sizes.min_bytes.min(item.size);
            sizes.max_bytes = sizes.max_bytes.max(item.size);
            sizes.write_units = sizes.write_units.max(write_units(item.size));
            sizes.indexed |= item.indexed;
        }
        kinds
    }

    fn get(&self, key: &Value) -> Option<StoredItem> {
        key_of(key).and_then(|key| self.items.get(&key).copied())
    }
}

/// The sizes of one kind of item at the end of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ItemSizes {
    pub items: u64,
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// Units of one write of the largest.
    pub write_units: u64,
    /// Carries the GSI keys (each write is one to the index too).
    pub indexed: bool,
}

/// The upper-case tags of a key (`TENANT#acme#WHEVT#whin_1` → `TENANT#WHEVT`).
fn tags(key: &str) -> String {
    let tags: Vec<&str> = key
        .split('#')
        .filter(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    tags.join("#")
}

fn key_of(item: &Value) -> Option<(String, String)> {
    Some((
        item[PK]["S"].as_str()?.to_string(),
        item[SK]["S"].as_str()?.to_string(),
    ))
}

/// An item that carries both keys of the sparse GSI is written to the index too (projection ALL:
/// the same size again, infra/template.yaml).
fn stored(item: &Map<String, Value>) -> StoredItem {
    StoredItem {
        size: item_size(item),
        indexed: item.contains_key(GSI1_PK) && item.contains_key(GSI1_SK),
    }
}

/// What a set of exchanges is billed for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Every request, by `<service>:<operation>`.
    pub requests: BTreeMap<String, u64>,
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    /// The units by operation, so a reader sees which write costs what.
    pub write_units_by_request: BTreeMap<String, f64>,
    pub read_units_by_request: BTreeMap<String, f64>,
    /// Writes whose item size could not be known (priced at 1 unit).
    pub writes_of_unknown_size: u64,
    /// SQS requests as billed (64 KB chunks), empty receives excluded.
    pub sqs_billed_requests: f64,
    /// ReceiveMessage answers without a message: the pollers' idle cost, by time, not per event.
    pub sqs_empty_receives: u64,
    pub kms_requests: u64,
    pub s3_puts: u64,
    pub s3_gets: u64,
    /// Requests of an operation this module does not price (none expected; listed, not hidden).
    pub unpriced: BTreeMap<String, u64>,
}

impl Usage {
    /// Prices `exchanges`; `table` gives the size of items that updates wrote.
    pub fn of(exchanges: &[AwsExchange], table: &TableItems) -> Usage {
        let mut usage = Usage::default();
        for exchange in exchanges {
            *usage.requests.entry(exchange.call.clone()).or_insert(0) += 1;
            let (service, operation) = exchange.call.split_once(':').unwrap_or(("", ""));
            match service {
                "dynamodb" => usage.add_dynamodb(exchange, operation, table),
                "sqs" => usage.add_sqs(exchange, operation),
                "kms" => usage.kms_requests += 1,
                "s3" if operation == "GET" || operation == "HEAD" => usage.s3_gets += 1,
                "s3" => usage.s3_puts += 1,
                _ => *usage.unpriced.entry(exchange.call.clone()).or_insert(0) += 1,
            }
        }
        usage
    }

    fn add_dynamodb(&mut self, exchange: &AwsExchange, operation: &str, table: &TableItems) {
        let request: Value = serde_json::from_slice(&exchange.request).unwrap_or(Value::Null);
        let response: Value = serde_json::from_slice(&exchange.response).unwrap_or(Value::Null);
        let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
        match operation {
            "PutItem" => {
                let written = self.put(&request["Item"]);
                self.write(&exchange.call, written);
            }
            "UpdateItem" | "DeleteItem" => {
                let written = self.keyed_write(&request["Key"], &response["Attributes"], table);
                self.write(&exchange.call, written);
            }
            "GetItem" => {
                let size = response["Item"].as_object().map_or(0, item_size);
                self.read(&exchange.call, read_units(size, consistent));
            }
            "Query" | "Scan" => {
                let size: u64 = response["Items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .map(item_size)
                    .sum();
                self.read(&exchange.call, read_units(size, consistent));
            }
            "BatchWriteItem" => {
                let mut units = 0;
                for requests in request["RequestItems"].as_object().into_iter().flatten() {
                    for write in requests.1.as_array().into_iter().flatten() {
                        units += if write["PutRequest"].is_object() {
                            self.put(&write["PutRequest"]["Item"])
                        } else {
                            self.keyed_write(&write["DeleteRequest"]["Key"], &Value::Null, table)
                        };
                    }
                }
                self.write(&exchange.call, units);
            }
            "TransactWriteItems" => {
                // A transaction bills two units per KB of each item it writes or checks.
                let mut units = 0;
                for item in request["TransactItems"].as_array().into_iter().flatten() {
                    units += 2 * if item["Put"].is_object() {
                        self.put(&item["Put"]["Item"])
                    } else {
                        let key = ["Update", "Delete", "ConditionCheck"]
                            .iter()
                            .map(|kind| &item[*kind]["Key"])
                            .find(|key| key.is_object())
                            .unwrap_or(&Value::Null);
                        self.keyed_write(key, &Value::Null, table)
                    };
                }
                self.write(&exchange.call, units);
            }
            _ => *self.unpriced.entry(exchange.call.clone()).or_insert(0) += 1,
        }
    }

    /// Units of putting `item` (and its index entry).
    fn put(&mut self, item: &Value) -> u64 {
        match item.as_object() {
            Some(item) => {
                let stored = stored(item);
                write_units(stored.size) * if stored.indexed { 2 } else { 1 }
            }
            None => {
                self.writes_of_unknown_size += 1;
                1
            }
        }
    }

    /// Units of a write that names its item by key: priced at the larger of the item as the answer
    /// shows it and as it is at the end of the phase (items only grow while an event is worked on).
    fn keyed_write(&mut self, key: &Value, answered: &Value, table: &TableItems) -> u64 {
        let answered = answered.as_object().map(stored);
        let at_end = table.get(key);
        let size = answered.map(|a| a.size).max(at_end.map(|e| e.size));
        let indexed = answered.is_some_and(|a| a.indexed) || at_end.is_some_and(|e| e.indexed);
        match size {
            Some(size) => write_units(size) * if indexed { 2 } else { 1 },
            None => {
                self.writes_of_unknown_size += 1;
                1
            }
        }
    }

    fn write(&mut self, call: &str, units: u64) {
        self.dynamodb_write_units += units as f64;
        *self
            .write_units_by_request
            .entry(call.to_string())
            .or_insert(0.0) += units as f64;
    }

    fn read(&mut self, call: &str, units: f64) {
        self.dynamodb_read_units += units;
        *self
            .read_units_by_request
            .entry(call.to_string())
            .or_insert(0.0) += units;
    }

    fn add_sqs(&mut self, exchange: &AwsExchange, operation: &str) {
        if operation == "ReceiveMessage" {
            let answer: Value = serde_json::from_slice(&exchange.response).unwrap_or(Value::Null);
            if answer["Messages"].as_array().is_none_or(Vec::is_empty) {
                self.sqs_empty_receives += 1;
                return;
            }
        }
        let payload = exchange.request.len().max(exchange.response.len());
        self.sqs_billed_requests += payload.div_ceil(SQS_CHUNK_BYTES).max(1) as f64;
    }
}

/// The Lambda side of one function: invocations and their billed time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LambdaUsage {
    pub invocations: u64,
    /// Sum over the invocations of each one's duration rounded up to the millisecond (Lambda's
    /// billing granularity).
    pub billed_ms: u64,
    pub memory_mb: u32,
}

impl LambdaUsage {
    pub fn gb_seconds(&self) -> f64 {
        f64::from(self.memory_mb) / 1024.0 * self.billed_ms as f64 / 1000.0
    }

    /// Per one of `operations` operations.
    pub fn per(&self, operations: u64) -> LambdaPerOperation {
        let n = operations.max(1) as f64;
        LambdaPerOperation {
            invocations: self.invocations as f64 / n,
            billed_ms: self.billed_ms as f64 / n,
            gb_seconds: self.gb_seconds() / n,
            memory_mb: self.memory_mb,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LambdaPerOperation {
    pub invocations: f64,
    pub billed_ms: f64,
    pub gb_seconds: f64,
    pub memory_mb: u32,
}

/// A duration as Lambda bills it: whole milliseconds, rounded up.
pub fn billed_ms(duration: std::time::Duration) -> u64 {
    (duration.as_nanos().div_ceil(1_000_000) as u64).max(1)
}

/// The billed AWS units of one operation (a [`Usage`] divided by how many operations made it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AwsPerOperation {
    pub requests: BTreeMap<String, f64>,
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub sqs_billed_requests: f64,
    pub kms_requests: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
}

impl Usage {
    pub fn per(&self, operations: u64) -> AwsPerOperation {
        let n = operations.max(1) as f64;
        AwsPerOperation {
            requests: self
                .requests
                .iter()
                .map(|(call, count)| (call.clone(), *count as f64 / n))
                .collect(),
            dynamodb_write_units: self.dynamodb_write_units / n,
            dynamodb_read_units: self.dynamodb_read_units / n,
            sqs_billed_requests: self.sqs_billed_requests / n,
            kms_requests: self.kms_requests as f64 / n,
            s3_puts: self.s3_puts as f64 / n,
            s3_gets: self.s3_gets as f64 / n,
        }
    }
}

impl std::ops::Add for AwsPerOperation {
    type Output = AwsPerOperation;

    fn add(mut self, other: AwsPerOperation) -> AwsPerOperation {
        for (call, count) in other.requests {
            *self.requests.entry(call).or_insert(0.0) += count;
        }
        self.dynamodb_write_units += other.dynamodb_write_units;
        self.dynamodb_read_units += other.dynamodb_read_units;
        self.sqs_billed_requests += other.sqs_billed_requests;
        self.kms_requests += other.kms_requests;
        self.s3_puts += other.s3_puts;
        self.s3_gets += other.s3_gets;
        self
    }
}

/// What one operation uses, all told.
#[derive(Debug, Clone, PartialEq)]
pub struct CostInputs {
    /// API Gateway requests (one per webhook received).
    pub api_requests: f64,
    /// One entry per function: its name and usage.
    pub lambda: Vec<(String, LambdaPerOperation)>,
    pub aws: AwsPerOperation,
}

/// One line of the cost table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    pub component: String,
    /// Billed units per operation (requests, GB-seconds, request units).
    pub units_per_operation: f64,
    pub unit: &'static str,
    pub usd_per_million: f64,
}

/// The list price of one million operations, by component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostTable {
    pub lines: Vec<CostLine>,
    pub total_usd_per_million: f64,
}

/// `usd per million = units per operation × 10^6 × price per unit`, per component.
pub fn cost_per_million(inputs: &CostInputs) -> CostTable {
    let mut lines = vec![CostLine {
        component: "API Gateway HTTP API".into(),
        units_per_operation: inputs.api_requests,
        unit: "requests",
        usd_per_million: inputs.api_requests * API_GATEWAY_HTTP_PER_MILLION,
    }];
    for (name, lambda) in &inputs.lambda {
        lines.push(CostLine {
            component: format!("Lambda requests ({name})"),
            units_per_operation: lambda.invocations,
            unit: "invocations",
            usd_per_million: lambda.invocations * LAMBDA_PER_MILLION_REQUESTS,
        });
        lines.push(CostLine {
            component: format!("Lambda compute ({name}, {} MB)", lambda.memory_mb),
            units_per_operation: lambda.gb_seconds,
            unit: "GB-s",
            usd_per_million: lambda.gb_seconds * 1e6 * LAMBDA_ARM64_PER_GB_SECOND,
        });
    }
    let aws = &inputs.aws;
    lines.extend([
        CostLine {
            component: "DynamoDB writes".into(),
            units_per_operation: aws.dynamodb_write_units,
            unit: "WRU",
            usd_per_million: aws.dynamodb_write_units * DYNAMODB_PER_MILLION_WRITE_UNITS,
        },
        CostLine {
            component: "DynamoDB reads".into(),
            units_per_operation: aws.dynamodb_read_units,
            unit: "RRU",
            usd_per_million: aws.dynamodb_read_units * DYNAMODB_PER_MILLION_READ_UNITS,
        },
        CostLine {
            component: "SQS".into(),
            units_per_operation: aws.sqs_billed_requests,
            unit: "requests",
            usd_per_million: aws.sqs_billed_requests * SQS_PER_MILLION_REQUESTS,
        },
        CostLine {
            component: "KMS".into(),
            units_per_operation: aws.kms_requests,
            unit: "requests",
            usd_per_million: aws.kms_requests * 100.0 * KMS_PER_10K_REQUESTS,
        },
        CostLine {
            component: "S3".into(),
            units_per_operation: aws.s3_puts + aws.s3_gets,
            unit: "requests",
            usd_per_million: (aws.s3_puts * S3_PUT_PER_1K + aws.s3_gets * S3_GET_PER_1K) * 1000.0,
        },
    ]);
    for line in &mut lines {
        line.units_per_operation = round6(line.units_per_operation);
        line.usd_per_million = round6(line.usd_per_million);
    }
    let total = round6(lines.iter().map(|line| line.usd_per_million).sum());
    CostTable {
        lines,
        total_usd_per_million: total,
    }
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

impl CostTable {
    /// The printed table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<40} {:>14} {:<12} {:>12}\n",
            "component", "per operation", "unit", "$ / million"
        );
        for line in &self.lines {
            out.push_str(&format!(
                "{:<40} {:>14.6} {:<12} {:>12.4}\n",
                line.component, line.units_per_operation, line.unit, line.usd_per_million
            ));
        }
        out.push_str(&format!(
            "{:<40} {:>14} {:<12} {:>12.4}\n",
            "total", "", "", self.total_usd_per_million
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    fn exchange(call: &str, request: Value, response: Value) -> AwsExchange {
        AwsExchange {
            call: call.into(),
            request: Bytes::from(request.to_string()),
            response: Bytes::from(response.to_string()),
        }
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn item_size_follows_the_documented_rules() {
        // "pk" 2 + "TENANT#t" 8; "n" 1 + 123.40 (4 significant digits: 2 + 1); "ok" 2 + 1;
        // "b" 1 + 3 bytes; "m" 1 + (3 + "k" 1 + "v" 1 + 1); "l" 1 + (3 + (1 + 1) + (1 + 1)).
        let item = object(json!({
            "pk": {"S": "TENANT#t"},
            "n": {"N": "123.40"},
            "ok": {"BOOL": true},
            "b": {"B": STANDARD.encode([1u8, 2, 3])},
            "m": {"M": {"k": {"S": "v"}}},
            "l": {"L": [{"S": "x"}, {"NULL": true}]},
        }));
        assert_eq!(item_size(&item), 10 + 4 + 3 + 4 + 7 + 8);
    }

    #[test]
    fn numbers_count_significant_digits_only() {
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("-0.00125"), 3);
        assert_eq!(number_size("1764590000"), 4);
    }

    #[test]
    fn writes_round_up_per_kilobyte_and_reads_per_four() {
        assert_eq!(
            (write_units(1), write_units(1024), write_units(1025)),
            (1, 1, 2)
        );
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(0, false), 0.5);
    }

    #[test]
    fn lambda_bills_whole_milliseconds_rounded_up() {
        use std::time::Duration;
        assert_eq!(billed_ms(Duration::from_micros(2_100)), 3);
        assert_eq!(billed_ms(Duration::from_millis(4)), 4);
        assert_eq!(billed_ms(Duration::ZERO), 1);
        let usage = LambdaUsage {
            invocations: 2,
            billed_ms: 8,
            memory_mb: 256,
        };
        assert_eq!(usage.gb_seconds(), 0.002);
    }

    #[test]
    fn updates_are_priced_at_the_item_they_leave_and_empty_receives_are_idle() {
        let big = "x".repeat(1500);
        let scan = json!({"Items": [{"pk": {"S": "P"}, "sk": {"S": "S"}, "body": {"S": big}}]})
            .to_string();
        let table = TableItems::from_scan_pages([scan.as_bytes()]);
        assert_eq!(table.len(), 1);
        assert_eq!(
            table.sizes_by_kind()["P S"],
            ItemSizes {
                items: 1,
                min_bytes: 1510,
                max_bytes: 1510,
                write_units: 2,
                indexed: false
            }
        );
        assert_eq!(tags("TENANT#acme#WHEVT#whin_01"), "TENANT#WHEVT");
        let key = json!({"pk": {"S": "P"}, "sk": {"S": "S"}});
        let usage = Usage::of(
            &[
                exchange(
                    "dynamodb:PutItem",
                    json!({"Item": {"pk": {"S": "P"}, "sk": {"S": "S"}}}),
                    json!({}),
                ),
                exchange("dynamodb:UpdateItem", json!({"Key": key}), json!({})),
                exchange(
                    "dynamodb:GetItem",
                    json!({"Key": key, "ConsistentRead": true}),
                    json!({"Item": {"pk": {"S": "P"}}}),
                ),
                exchange("dynamodb:Query", json!({}), json!({"Items": []})),
                exchange("sqs:ReceiveMessage", json!({}), json!({})),
                exchange(
                    "sqs:ReceiveMessage",
                    json!({}),
                    json!({"Messages": [{"Body": "x".repeat(70_000)}]}),
                ),
                exchange("sqs:DeleteMessageBatch", json!({}), json!({})),
                exchange("kms:Decrypt", json!({}), json!({})),
            ],
            &table,
        );
        assert_eq!(usage.dynamodb_write_units, 1.0 + 2.0);
        assert_eq!(usage.write_units_by_request["dynamodb:UpdateItem"], 2.0);
        assert_eq!(usage.dynamodb_read_units, 1.0 + 0.5);
        assert_eq!(usage.sqs_empty_receives, 1);
        assert_eq!(usage.sqs_billed_requests, 2.0 + 1.0);
        assert_eq!(usage.kms_requests, 1);
        assert_eq!(usage.requests["sqs:ReceiveMessage"], 2);
        assert!(usage.unpriced.is_empty());
    }

    #[test]
    fn an_indexed_item_is_written_twice_and_a_transaction_doubles() {
        let item =
            json!({"pk": {"S": "P"}, "sk": {"S": "S"}, "gsi1pk": {"S": "A"}, "gsi1sk": {"S": "B"}});
        let usage = Usage::of(
            &[
                exchange("dynamodb:PutItem", json!({"Item": item}), json!({})),
                exchange(
                    "dynamodb:TransactWriteItems",
                    json!({"TransactItems": [{"Put": {"Item": {"pk": {"S": "Q"}, "sk": {"S": "S"}}}}]}),
                    json!({}),
                ),
                exchange(
                    "dynamodb:UpdateItem",
                    json!({"Key": {"pk": {"S": "gone"}, "sk": {"S": "S"}}}),
                    json!({}),
                ),
            ],
            &TableItems::default(),
        );
        assert_eq!(usage.dynamodb_write_units, 2.0 + 2.0 + 1.0);
        assert_eq!(usage.writes_of_unknown_size, 1);
    }

    #[test]
    fn cost_per_million_is_units_per_operation_times_the_list_price() {
        let accept = Usage {
            dynamodb_write_units: 200.0,
            sqs_billed_requests: 100.0,
            ..Usage::default()
        };
        let process = Usage {
            dynamodb_write_units: 600.0,
            dynamodb_read_units: 20.0,
            sqs_billed_requests: 140.0,
            kms_requests: 1,
            ..Usage::default()
        };
        let lambda = LambdaUsage {
            invocations: 100,
            billed_ms: 1200,
            memory_mb: 256,
        };
        let table = cost_per_million(&CostInputs {
            api_requests: 1.0,
            lambda: vec![("inbound-webhook".into(), lambda.per(100))],
            aws: accept.per(100) + process.per(100),
        });
        let usd: Vec<(&str, f64)> = table
            .lines
            .iter()
            .map(|line| (line.component.as_str(), line.usd_per_million))
            .collect();
        assert_eq!(
            usd,
            vec![
                ("API Gateway HTTP API", 1.0),
                ("Lambda requests (inbound-webhook)", 0.2),
                // 0.25 GB × 12 ms = 0.003 GB-s per webhook, × 10^6 × $0.0000133334.
                ("Lambda compute (inbound-webhook, 256 MB)", 0.04),
                ("DynamoDB writes", 5.0),
                ("DynamoDB reads", 0.025),
                ("SQS", 0.96),
                // 0.01 requests per webhook: 10,000 per million at $0.03.
                ("KMS", 0.03),
                ("S3", 0.0),
            ]
        );
        assert_eq!(table.total_usd_per_million, 7.255);
        assert!(table.table().contains("total"));
    }
}
