//! Reading `infra/template.yaml`, the one description of the deployed resources. The local stack takes
//! its routes (gateway) and its table, key, payloads bucket and queues (provisioning) from here, so local and deployed
//! shapes cannot drift: change the template and both follow.
//!
//! CloudFormation intrinsics appear either in short form (`!Ref X`, a YAML tag) or in long form (a
//! one-key mapping such as `{"Fn::GetAtt": [X, Arn]}`); both are understood where a reference is
//! expected, and a value the local stack must copy literally is refused when it is an intrinsic.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Tagged;

/// The SAM template, compiled in so the local stack needs no path at run time.
pub const TEMPLATE_YAML: &str = include_str!("../../infra/template.yaml");

/// Logical id of the DynamoDB table.
pub const TABLE: &str = "Table";
/// Logical id of the KMS key that wraps secret data keys.
pub const SECRETS_KEY: &str = "SecretsKey";
/// Logical id of the bucket of large inbound bodies.
pub const PAYLOADS_BUCKET: &str = "PayloadsBucket";
/// Logical ids of the queues.
pub const SYNC_QUEUE: &str = "SyncQueue";
pub const SYNC_DEAD_LETTER_QUEUE: &str = "SyncDeadLetterQueue";
pub const DISPATCH_QUEUE: &str = "DispatchQueue";
pub const DISPATCH_DEAD_LETTER_QUEUE: &str = "DispatchDeadLetterQueue";

/// Queue properties that are SQS queue attributes of the same name and are copied as they are.
const COPIED_QUEUE_ATTRIBUTES: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
];
/// Queue properties that do not change how a queue behaves locally (the caller names queues).
const IGNORED_QUEUE_PROPERTIES: &[&str] = &["QueueName", "Tags"];
/// Bucket properties that do not change how the bucket behaves locally (the caller names it).
const IGNORED_BUCKET_PROPERTIES: &[&str] = &["BucketName", "Tags"];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("infra/template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("infra/template.yaml: {path} is missing")]
    Missing { path: String },
    #[error("infra/template.yaml: {path} should be {expected}, but is {found}")]
    Unexpected {
        path: String,
        expected: String,
        found: String,
    },
}

/// One HTTP API route of a function, as API Gateway will serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// Upper-case HTTP method, or `ANY`.
    pub method: String,
    /// API Gateway route path, e.g. `/api/integrations/{id}` or `/api/{proxy+}`.
    pub path: String,
    /// Logical id of the function serving it, e.g. `IntegrationsFunction`.
    pub function: String,
    /// True when no authorizer guards the route (`Auth.Authorizer: NONE`, or no default authorizer).
    pub public: bool,
}

/// The resources the local stack creates, as the template declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDefinitions {
    pub table: TableDefinition,
    pub secrets_key: KeyDefinition,
    pub payloads_bucket: BucketDefinition,
    /// Every `AWS::SQS::Queue`, in template order.
    pub queues: Vec<QueueDefinition>,
}

impl TemplateDefinitions {
    pub fn queue(&self, logical_id: &str) -> Option<&QueueDefinition> {
        self.queues
            .iter()
            .find(|queue| queue.logical_id == logical_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// Always `PAY_PER_REQUEST`: the template's table is on-demand.
    pub billing_mode: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    pub global_secondary_indexes: Vec<IndexDefinition>,
    /// The TTL attribute when TTL is enabled.
    pub time_to_live_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDefinition {
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDefinition {
    pub key_spec: Option<String>,
    pub key_usage: Option<String>,
    pub enable_key_rotation: bool,
}

/// The settings of an `AWS::S3::Bucket` that the local stack applies. Its bucket policy
/// (`AWS::S3::BucketPolicy`, TLS only) is not: moto serves plain HTTP and evaluates no policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDefinition {
    /// `BucketEncryption`: the default encryption of new objects.
    pub encryption: Option<BucketEncryptionDefinition>,
    /// `PublicAccessBlockConfiguration`.
    pub public_access_block: Option<PublicAccessBlockDefinition>,
    /// `OwnershipControls` (`BucketOwnerEnforced`, …), one rule as S3 allows.
    pub object_ownership: Option<String>,
    /// `LifecycleConfiguration.Rules`, in template order.
    pub lifecycle_rules: Vec<LifecycleRuleDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEncryptionDefinition {
    /// `aws:kms`, `aws:kms:dsse` or `AES256`.
    pub sse_algorithm: String,
    /// True when `KMSMasterKeyID` names the template's secrets key (`!GetAtt SecretsKey.Arn` or
    /// `!Ref SecretsKey`): the local stack uses the key it provisioned for it.
    pub uses_secrets_key: bool,
    pub bucket_key_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAccessBlockDefinition {
    pub block_public_acls: bool,
    pub block_public_policy: bool,
    pub ignore_public_acls: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRuleDefinition {
    pub id: String,
    pub enabled: bool,
    /// `Prefix` (empty: the whole bucket).
    pub prefix: String,
    pub expiration_in_days: Option<u32>,
    /// `AbortIncompleteMultipartUpload.DaysAfterInitiation`.
    pub abort_incomplete_multipart_upload_days: Option<u32>,
}

/// What Lambda is told about an `AWS::Serverless::Function`: its own property, else
/// `Globals.Function`, else Lambda's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDefinition {
    pub logical_id: String,
    /// `Timeout`: how long one invocation may run (Lambda's default: 3 s).
    pub timeout_seconds: u32,
    /// `MemorySize` in MB (Lambda's default: 128).
    pub memory_size_mb: u32,
}

/// Lambda's defaults when neither the function nor `Globals.Function` sets them.
pub const DEFAULT_FUNCTION_TIMEOUT_SECONDS: u32 = 3;
pub const DEFAULT_FUNCTION_MEMORY_SIZE_MB: u32 = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDefinition {
    pub logical_id: String,
    /// SQS attribute name → value, as `SetQueueAttributes` takes them (RedrivePolicy excluded).
    pub attributes: BTreeMap<String, String>,
    pub redrive: Option<RedriveDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveDefinition {
    /// Logical id of the dead-letter queue.
    pub dead_letter_queue: String,
    pub max_receive_count: u32,
}

/// The HTTP routes of every function in the bundled template.
pub fn http_routes() -> Result<Vec<HttpRoute>, TemplateError> {
    Template::bundled()?.http_routes()
}

/// How Lambda runs one function of the bundled template (timeout, memory).
pub fn function_definition(logical_id: &str) -> Result<FunctionDefinition, TemplateError> {
    Template::bundled()?.function_definition(logical_id)
}

/// The table, key, bucket and queue definitions of the bundled template.
pub fn template_definitions() -> Result<TemplateDefinitions, TemplateError> {
    Template::bundled()?.definitions()
}

/// A parsed SAM template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    pub fn bundled() -> Result<Template, TemplateError> {
        Template::parse(TEMPLATE_YAML)
    }

    pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            root: serde_saphyr::from_str(yaml)?,
        })
    }

    fn root(&self) -> Node<'_> {
        Node {
            path: String::new(),
            value: &self.root,
        }
    }

    /// A resource's node by logical id, checked to be of `resource_type`.
    fn resource(&self, logical_id: &str, resource_type: &str) -> Result<Node<'_>, TemplateError> {
        let resource = self.root().field("Resources")?.field(logical_id)?;
        let found = resource.field("Type")?;
        if found.literal()? != resource_type {
            return Err(found.unexpected(resource_type));
        }
        Ok(resource)
    }

    /// Every resource of `resource_type`, in template order.
    fn resources_of_type(
        &self,
        resource_type: &str,
    ) -> Result<Vec<(String, Node<'_>)>, TemplateError> {
        let mut found = Vec::new();
        for (logical_id, resource) in self.root().field("Resources")?.entries()? {
            if resource.field("Type")?.literal()? == resource_type {
                found.push((logical_id, resource));
            }
        }
        Ok(found)
    }

    /// The `HttpApi` events of every `AWS::Serverless::Function`, in template order.
    pub fn http_routes(&self) -> Result<Vec<HttpRoute>, TemplateError> {
        let mut routes = Vec::new();
        for (function, resource) in self.resources_of_type("AWS::Serverless::Function")? {
            let Some(events) = resource.field("Properties")?.optional_field("Events")? else {
                continue;
            };
            for (_, event) in events.entries()? {
                if event.field("Type")?.literal()? != "HttpApi" {
                    continue;
                }
                let properties = event.field("Properties")?;
                let authorizer = match properties.optional_field("Auth")? {
                    Some(auth) => auth
                        .optional_field("Authorizer")?
                        .map(|a| a.literal())
                        .transpose()?,
                    None => None,
                };
                let public = match authorizer {
                    Some(name) => name == "NONE",
                    None => self.default_authorizer(&properties)?.is_none(),
                };
                routes.push(HttpRoute {
                    method: properties.field("Method")?.literal()?.to_ascii_uppercase(),
                    path: properties.field("Path")?.literal()?,
                    function: function.clone(),
                    public,
                });
            }
        }
        Ok(routes)
    }

    /// The default authorizer of the API an event is attached to (its `ApiId`, else SAM's implicit
    /// API), where the API's own `Auth` takes precedence over `Globals.HttpApi.Auth`.
    fn default_authorizer(
        &self,
        event_properties: &Node<'_>,
    ) -> Result<Option<String>, TemplateError> {
        if let Some(api_id) = event_properties.optional_field("ApiId")? {
            let api = self.resource(&api_id.reference()?, "AWS::Serverless::HttpApi")?;
            if let Some(properties) = api.optional_field("Properties")? {
                if let Some(name) = default_authorizer_of(&properties)? {
                    return Ok(Some(name));
                }
            }
        }
        match self.root().optional_field("Globals")? {
            Some(globals) => match globals.optional_field("HttpApi")? {
                Some(http_api) => default_authorizer_of(&http_api),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The timeout and memory of the function `logical_id`.
    pub fn function_definition(
        &self,
        logical_id: &str,
    ) -> Result<FunctionDefinition, TemplateError> {
        let resource = self.resource(logical_id, "AWS::Serverless::Function")?;
        let properties = resource.optional_field("Properties")?;
        let globals = match self.root().optional_field("Globals")? {
            Some(globals) => globals.optional_field("Function")?,
            None => None,
        };
        let setting = |name: &str, default: u32| -> Result<u32, TemplateError> {
            for scope in [&properties, &globals].into_iter().flatten() {
                if let Some(value) = scope.optional_field(name)? {
                    return value.number();
                }
            }
            Ok(default)
        };
        Ok(FunctionDefinition {
            logical_id: logical_id.to_string(),
            timeout_seconds: setting("Timeout", DEFAULT_FUNCTION_TIMEOUT_SECONDS)?,
            memory_size_mb: setting("MemorySize", DEFAULT_FUNCTION_MEMORY_SIZE_MB)?,
        })
    }

    pub fn definitions(&self) -> Result<TemplateDefinitions, TemplateError> {
        let mut queues = Vec::new();
        for (logical_id, resource) in self.resources_of_type("AWS::SQS::Queue")? {
            queues.push(queue_definition(logical_id, &resource)?);
        }
        Ok(TemplateDefinitions {
            table: table_definition(&self.resource(TABLE, "AWS::DynamoDB::Table")?)?,
            secrets_key: key_definition(&self.resource(SECRETS_KEY, "AWS::KMS::Key")?)?,
            payloads_bucket: bucket_definition(
                &self.resource(PAYLOADS_BUCKET, "AWS::S3::Bucket")?,
            )?,
            queues,
        })
    }
}

fn default_authorizer_of(api_properties: &Node<'_>) -> Result<Option<String>, TemplateError> {
    match api_properties.optional_field("Auth")? {
        Some(auth) => auth
            .optional_field("DefaultAuthorizer")?
            .map(|name| name.literal())
            .transpose(),
        None => Ok(None),
    }
}

fn table_definition(resource: &Node<'_>) -> Result<TableDefinition, TemplateError> {
    let properties = resource.field("Properties")?;
    let billing = properties.field("BillingMode")?;
    let billing_mode = billing.literal()?;
    if billing_mode != "PAY_PER_REQUEST" {
        return Err(
            billing.unexpected("PAY_PER_REQUEST (the local stack creates on-demand tables only)")
        );
    }
    let attribute_definitions = properties
        .field("AttributeDefinitions")?
        .items()?
        .iter()
        .map(|attribute| {
            Ok(AttributeDefinition {
                attribute_name: attribute.field("AttributeName")?.literal()?,
                attribute_type: attribute.field("AttributeType")?.literal()?,
            })
        })
        .collect::<Result<_, TemplateError>>()?;
    let global_secondary_indexes = match properties.optional_field("GlobalSecondaryIndexes")? {
        Some(indexes) => indexes
            .items()?
            .iter()
            .map(index_definition)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let time_to_live_attribute = match properties.optional_field("TimeToLiveSpecification")? {
        Some(ttl) if ttl.field("Enabled")?.boolean()? => {
            Some(ttl.field("AttributeName")?.literal()?)
        }
        _ => None,
    };
    Ok(TableDefinition {
        billing_mode,
        attribute_definitions,
        key_schema: key_schema(&properties.field("KeySchema")?)?,
        global_secondary_indexes,
        time_to_live_attribute,
    })
}

fn key_schema(node: &Node<'_>) -> Result<Vec<KeyElement>, TemplateError> {
    node.items()?
        .iter()
        .map(|element| {
            Ok(KeyElement {
                attribute_name: element.field("AttributeName")?.literal()?,
                key_type: element.field("KeyType")?.literal()?,
            })
        })
        .collect()
}

fn index_definition(index: &Node<'_>) -> Result<IndexDefinition, TemplateError> {
    let projection = index.field("Projection")?;
    let non_key_attributes = match projection.optional_field("NonKeyAttributes")? {
        Some(names) => names
            .items()?
            .iter()
            .map(Node::literal)
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(IndexDefinition {
        index_name: index.field("IndexName")?.literal()?,
        key_schema: key_schema(&index.field("KeySchema")?)?,
        projection_type: projection.field("ProjectionType")?.literal()?,
        non_key_attributes,
    })
}

fn key_definition(resource: &Node<'_>) -> Result<KeyDefinition, TemplateError> {
    let properties = resource.field("Properties")?;
    let optional_literal = |name: &str| -> Result<Option<String>, TemplateError> {
        properties
            .optional_field(name)?
            .map(|value| value.literal())
            .transpose()
    };
    Ok(KeyDefinition {
        key_spec: optional_literal("KeySpec")?,
        key_usage: optional_literal("KeyUsage")?,
        enable_key_rotation: match properties.optional_field("EnableKeyRotation")? {
            Some(rotation) => rotation.boolean()?,
            None => false,
        },
    })
}

fn bucket_definition(resource: &Node<'_>) -> Result<BucketDefinition, TemplateError> {
    let mut definition = BucketDefinition {
        encryption: None,
        public_access_block: None,
        object_ownership: None,
        lifecycle_rules: Vec::new(),
    };
    let Some(properties) = resource.optional_field("Properties")? else {
        return Ok(definition);
    };
    for (name, value) in properties.entries()? {
        match name.as_str() {
            "BucketEncryption" => definition.encryption = Some(bucket_encryption(&value)?),
            "PublicAccessBlockConfiguration" => {
                let flag = |name: &str| -> Result<bool, TemplateError> {
                    match value.optional_field(name)? {
                        Some(flag) => flag.boolean(),
                        None => Ok(false),
                    }
                };
                definition.public_access_block = Some(PublicAccessBlockDefinition {
                    block_public_acls: flag("BlockPublicAcls")?,
                    block_public_policy: flag("BlockPublicPolicy")?,
                    ignore_public_acls: flag("IgnorePublicAcls")?,
                    restrict_public_buckets: flag("RestrictPublicBuckets")?,
                });
            }
            "OwnershipControls" => {
                let rules = value.field("Rules")?.items()?;
                let [rule] = rules.as_slice() else {
                    return Err(value.field("Rules")?.unexpected("exactly one rule"));
                };
                definition.object_ownership = Some(rule.field("ObjectOwnership")?.literal()?);
            }
            "LifecycleConfiguration" => {
                definition.lifecycle_rules = value
                    .field("Rules")?
                    .items()?
                    .iter()
                    .map(lifecycle_rule)
                    .collect::<Result<_, _>>()?;
            }
            _ if IGNORED_BUCKET_PROPERTIES.contains(&name.as_str()) => {}
            _ => return Err(unsupported(&value, "bucket")),
        }
    }
    Ok(definition)
}

fn bucket_encryption(value: &Node<'_>) -> Result<BucketEncryptionDefinition, TemplateError> {
    let configurations = value.field("ServerSideEncryptionConfiguration")?;
    let rules = configurations.items()?;
    let [rule] = rules.as_slice() else {
        return Err(configurations.unexpected("exactly one encryption rule"));
    };
    let default = rule.field("ServerSideEncryptionByDefault")?;
    let uses_secrets_key = match default.optional_field("KMSMasterKeyID")? {
        None => false,
        Some(key) => {
            let logical_id = match key.get_att() {
                Ok((logical_id, attribute)) if attribute == "Arn" => logical_id,
                Ok(_) => return Err(key.unexpected("!GetAtt SecretsKey.Arn")),
                Err(_) => key.reference()?,
            };
            if logical_id != SECRETS_KEY {
                return Err(
                    key.unexpected("the secrets key (the only key the local stack provisions)")
                );
            }
            true
        }
    };
    Ok(BucketEncryptionDefinition {
        sse_algorithm: default.field("SSEAlgorithm")?.literal()?,
        uses_secrets_key,
        bucket_key_enabled: match rule.optional_field("BucketKeyEnabled")? {
            Some(flag) => flag.boolean()?,
            None => false,
        },
    })
}

fn lifecycle_rule(rule: &Node<'_>) -> Result<LifecycleRuleDefinition, TemplateError> {
    let status = rule.field("Status")?;
    let enabled = match status.literal()?.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        _ => return Err(status.unexpected("Enabled or Disabled")),
    };
    let mut definition = LifecycleRuleDefinition {
        id: rule.field("Id")?.literal()?,
        enabled,
        prefix: String::new(),
        expiration_in_days: None,
        abort_incomplete_multipart_upload_days: None,
    };
    for (name, value) in rule.entries()? {
        match name.as_str() {
            "Id" | "Status" => {}
            "Prefix" => definition.prefix = value.literal()?,
            "ExpirationInDays" => definition.expiration_in_days = Some(value.number()?),
            "AbortIncompleteMultipartUpload" => {
                definition.abort_incomplete_multipart_upload_days =
                    Some(value.field("DaysAfterInitiation")?.number()?);
            }
            _ => return Err(unsupported(&value, "lifecycle rule")),
        }
    }
    Ok(definition)
}

/// A property the local stack would silently drop: refused, so a template change cannot make the
/// local resource differ from the deployed one unnoticed.
fn unsupported(value: &Node<'_>, what: &str) -> TemplateError {
    TemplateError::Unexpected {
        path: value.path.clone(),
        expected: format!(
            "a {what} property the local stack copies (extend template.rs to copy it)"
        ),
        found: "an unsupported property".into(),
    }
}

fn queue_definition(
    logical_id: String,
    resource: &Node<'_>,
) -> Result<QueueDefinition, TemplateError> {
    let mut attributes = BTreeMap::new();
    let mut redrive = None;
    if let Some(properties) = resource.optional_field("Properties")? {
        for (name, value) in properties.entries()? {
            if name == "RedrivePolicy" {
                let (dead_letter_queue, attribute) =
                    value.field("deadLetterTargetArn")?.get_att()?;
                if attribute != "Arn" {
                    return Err(value
                        .field("deadLetterTargetArn")?
                        .unexpected("!GetAtt <queue>.Arn"));
                }
                redrive = Some(RedriveDefinition {
                    dead_letter_queue,
                    max_receive_count: value.field("maxReceiveCount")?.number()?,
                });
            } else if COPIED_QUEUE_ATTRIBUTES.contains(&name.as_str()) {
                attributes.insert(name, value.literal()?);
            } else if !IGNORED_QUEUE_PROPERTIES.contains(&name.as_str()) {
                return Err(unsupported(&value, "queue"));
            }
        }
    }
    Ok(QueueDefinition {
        logical_id,
        attributes,
        redrive,
    })
}

/// A value in the template with the path that leads to it, for error messages.
#[derive(Debug, Clone)]
struct Node<'a> {
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    fn child(&self, segment: &str, value: &'a Value) -> Node<'a> {
        let path = if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{}.{segment}", self.path)
        };
        Node { path, value }
    }

    fn field(&self, key: &str) -> Result<Node<'a>, TemplateError> {
        self.optional_field(key)?
            .ok_or_else(|| TemplateError::Missing {
                path: self.child(key, self.value).path,
            })
    }

    fn optional_field(&self, key: &str) -> Result<Option<Node<'a>>, TemplateError> {
        match self.value {
            Value::Mapping(mapping) => Ok(mapping
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| self.child(key, value))),
            _ => Err(self.unexpected("a mapping")),
        }
    }

    /// The entries of a mapping, in template order.
    fn entries(&self) -> Result<Vec<(String, Node<'a>)>, TemplateError> {
        let Value::Mapping(mapping) = self.value else {
            return Err(self.unexpected("a mapping"));
        };
        Ok(mapping
            .iter()
            .map(|(name, value)| (name.clone(), self.child(name, value)))
            .collect())
    }

    fn items(&self) -> Result<Vec<Node<'a>>, TemplateError> {
        let Value::Sequence(items) = self.value else {
            return Err(self.unexpected("a list"));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(index, value)| Node {
                path: format!("{}[{index}]", self.path),
                value,
            })
            .collect())
    }

    /// A scalar written literally (CloudFormation accepts numbers and booleans where strings go).
    fn literal(&self) -> Result<String, TemplateError> {
        match self.value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            _ => Err(self.unexpected("a literal value")),
        }
    }

    fn boolean(&self) -> Result<bool, TemplateError> {
        match self.literal()?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.unexpected("true or false")),
        }
    }

    fn number(&self) -> Result<u32, TemplateError> {
        self.literal()?
            .parse()
            .map_err(|_| self.unexpected("a non-negative integer"))
    }

    /// The logical id named by `!Ref X` / `{Ref: X}`.
    fn reference(&self) -> Result<String, TemplateError> {
        match intrinsic(self.value) {
            Some(("Ref", argument)) => self.child("Ref", argument).literal(),
            _ => Err(self.unexpected("!Ref <logical id>")),
        }
    }

    /// `(logical id, attribute)` named by `!GetAtt X.Attr` / `{Fn::GetAtt: [X, Attr]}`.
    fn get_att(&self) -> Result<(String, String), TemplateError> {
        let Some(("Fn::GetAtt", argument)) = intrinsic(self.value) else {
            return Err(self.unexpected("!GetAtt <logical id>.<attribute>"));
        };
        let argument = self.child("Fn::GetAtt", argument);
        let parts = match argument.value {
            Value::Sequence(_) => argument
                .items()?
                .iter()
                .map(Node::literal)
                .collect::<Result<Vec<_>, _>>()?,
            _ => argument
                .literal()?
                .splitn(2, '.')
                .map(str::to_string)
                .collect(),
        };
        match <[String; 2]>::try_from(parts) {
            Ok([logical_id, attribute]) => Ok((logical_id, attribute)),
            Err(_) => Err(argument.unexpected("<logical id>.<attribute>")),
        }
    }

    fn unexpected(&self, expected: &str) -> TemplateError {
        TemplateError::Unexpected {
            path: self.path.clone(),
            expected: expected.to_string(),
            found: describe(self.value),
        }
    }
}

/// The CloudFormation intrinsic a value is, as (long-form name, argument).
fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Tagged(tag, argument) => {
            let name = tag.trim_start_matches('!');
            let long = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            // The long-form names are a small closed set; map back to a &'static str.
            INTRINSICS
                .iter()
                .find(|known| **known == long)
                .map(|known| (*known, argument.as_ref()))
        }
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (name, argument) = mapping.first()?;
            INTRINSICS
                .iter()
                .find(|known| *known == name)
                .map(|known| (*known, argument))
        }
        _ => None,
    }
}

const INTRINSICS: &[&str] = &[
    "Ref",
    "Condition",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::FindInMap",
    "Fn::GetAtt",
    "Fn::GetAZs",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::Sub",
    "Fn::Transform",
    "Fn::And",
    "Fn::Equals",
    "Fn::If",
    "Fn::Not",
    "Fn::Or",
    "Fn::Length",
    "Fn::ToJsonString",
];

/// A node of the template as YAML wrote it, with the application tag (`!Ref`, `!GetAtt`, …) kept:
/// CloudFormation's short-form intrinsics are tags, so a plain data model would lose them.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Sequence(Vec<Value>),
    /// Entries in template order; keys are strings in a CloudFormation template.
    Mapping(Vec<(String, Value)>),
    /// A node with an application tag, e.g. `!Ref Table` → (`!Ref`, `"Table"`).
    Tagged(String, Box<Value>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        // serde-saphyr hands the node's tag to `Tagged`; the node itself goes to the visitor.
        let Tagged(value, tag) = Tagged::<UntaggedValue>::deserialize(deserializer)?;
        Ok(match tag {
            // YAML's own types (`!!str`, `tag:yaml.org,2002:int`, …) are already in the value.
            Some(tag) if !tag.starts_with("!!") && !tag.starts_with("tag:yaml.org,2002:") => {
                Value::Tagged(tag, Box::new(value.0))
            }
            _ => value.0,
        })
    }
}

/// One node without its own tag (its children keep theirs).
struct UntaggedValue(Value);

impl<'de> Deserialize<'de> for UntaggedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UntaggedValue, D::Error> {
        deserializer
            .deserialize_any(ValueVisitor)
            .map(UntaggedValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a YAML node")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Value, E> {
        Ok(Value::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Value, E> {
        Ok(Value::Number(number.into()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Value, E> {
        Ok(Value::Number(number.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(number)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{number} is not a number CloudFormation accepts")))
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut sequence = Vec::new();
        while let Some(item) = items.next_element()? {
            sequence.push(item);
        }
        Ok(Value::Sequence(sequence))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut mapping = Vec::new();
        while let Some((key, value)) = entries.next_entry::<String, Value>()? {
            mapping.push((key, value));
        }
        Ok(Value::Mapping(mapping))
    }
}

fn describe(value: &Value) -> String {
    if let Some((name, _)) = intrinsic(value) {
        return format!("the intrinsic {name}");
    }
    match value {
        Value::Null => "empty".into(),
        Value::Bool(flag) => format!("{flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("{text:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(tag, _) => format!("an unknown tag {tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL_TEMPLATE: &str = r#"
Globals:
  HttpApi:
    Auth:
      DefaultAuthorizer: Jwt
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Guarded:
          Type: HttpApi
          Properties: { ApiId: { Ref: Api }, Method: post, Path: /a }
        Open:
          Type: HttpApi
          Properties: { ApiId: !Ref Api, Method: GET, Path: /b, Auth: { Authorizer: NONE } }
        Queue:
          Type: SQS
          Properties: { Queue: !GetAtt Q.Arn }
  Q:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy:
        deadLetterTargetArn: { "Fn::GetAtt": [Dlq, Arn] }
        maxReceiveCount: "3"
  Dlq:
    Type: AWS::SQS::Queue
"#;

    #[test]
    fn routes_use_the_global_default_authorizer_unless_the_route_says_none() {
        let routes = Template::parse(SMALL_TEMPLATE)
            .unwrap()
            .http_routes()
            .unwrap();

        assert_eq!(
            routes,
            vec![
                HttpRoute {
                    method: "POST".into(),
                    path: "/a".into(),
                    function: "Fn".into(),
                    public: false
                },
                HttpRoute {
                    method: "GET".into(),
                    path: "/b".into(),
                    function: "Fn".into(),
                    public: true
                },
            ]
        );
    }

    #[test]
    fn routes_without_any_default_authorizer_are_public() {
        let template = SMALL_TEMPLATE.replace("DefaultAuthorizer: Jwt", "Other: x");

        let routes = Template::parse(&template).unwrap().http_routes().unwrap();

        assert!(routes.iter().all(|route| route.public));
    }

    #[test]
    fn redrive_targets_are_read_from_short_and_long_form_get_att() {
        let template = Template::parse(SMALL_TEMPLATE).unwrap();
        let mut queues = Vec::new();
        for (logical_id, resource) in template.resources_of_type("AWS::SQS::Queue").unwrap() {
            queues.push(queue_definition(logical_id, &resource).unwrap());
        }

        assert_eq!(
            queues[0],
            QueueDefinition {
                logical_id: "Q".into(),
                attributes: BTreeMap::from([("VisibilityTimeout".to_string(), "60".to_string())]),
                redrive: Some(RedriveDefinition {
                    dead_letter_queue: "Dlq".into(),
                    max_receive_count: 3
                }),
            }
        );
        assert_eq!(queues[1].redrive, None);

        let short = SMALL_TEMPLATE.replace(r#"{ "Fn::GetAtt": [Dlq, Arn] }"#, "!GetAtt Dlq.Arn");
        let template = Template::parse(&short).unwrap();
        let (logical_id, resource) = template
            .resources_of_type("AWS::SQS::Queue")
            .unwrap()
            .remove(0);
        let redrive = queue_definition(logical_id, &resource)
            .unwrap()
            .redrive
            .unwrap();
        assert_eq!(redrive.dead_letter_queue, "Dlq");
    }

    #[test]
    fn short_form_intrinsics_keep_their_tag_on_scalars_lists_and_mappings() {
        let template = Template::parse(
            "a: !Ref Table\n\
             b: !GetAtt [Queue, Arn]\n\
             c: !Sub \"${AWS::StackName}-x\"\n\
             d: !If\n  - IsProd\n  - 1\n  - { Ref: AWS::NoValue }\n\
             e: !!str 42\n\
             f: 60\n",
        )
        .unwrap();
        let root = template.root();
        let value = |key: &str| root.field(key).unwrap().value.clone();

        assert_eq!(
            value("a"),
            Value::Tagged("!Ref".into(), Box::new(Value::String("Table".into())))
        );
        assert_eq!(root.field("a").unwrap().reference().unwrap(), "Table");
        assert_eq!(
            root.field("b").unwrap().get_att().unwrap(),
            ("Queue".into(), "Arn".into())
        );
        assert_eq!(
            intrinsic(&value("c")).map(|(name, _)| name),
            Some("Fn::Sub")
        );
        let condition = value("d");
        let Some(("Fn::If", Value::Sequence(branches))) = intrinsic(&condition) else {
            panic!("!If of a list: {condition:?}");
        };
        assert_eq!(intrinsic(&branches[2]).map(|(name, _)| name), Some("Ref"));
        // A YAML core tag is a type, not an intrinsic.
        assert_eq!(value("e"), Value::String("42".into()));
        assert_eq!(root.field("f").unwrap().literal().unwrap(), "60");
    }

    #[test]
    fn an_intrinsic_where_a_literal_must_be_copied_is_refused_with_its_path() {
        let template =
            SMALL_TEMPLATE.replace("VisibilityTimeout: 60", "VisibilityTimeout: !Ref Timeout");
        let template = Template::parse(&template).unwrap();
        let (logical_id, resource) = template
            .resources_of_type("AWS::SQS::Queue")
            .unwrap()
            .remove(0);

        let error = queue_definition(logical_id, &resource)
            .unwrap_err()
            .to_string();

        assert_eq!(
            error,
            "infra/template.yaml: Resources.Q.Properties.VisibilityTimeout should be a literal value, \
             but is the intrinsic Ref"
        );
    }

    #[test]
    fn an_unknown_queue_property_is_refused_rather_than_silently_dropped() {
        let template = SMALL_TEMPLATE.replace("VisibilityTimeout: 60", "FifoQueue: true");
        let template = Template::parse(&template).unwrap();
        let (logical_id, resource) = template
            .resources_of_type("AWS::SQS::Queue")
            .unwrap()
            .remove(0);

        let error = queue_definition(logical_id, &resource)
            .unwrap_err()
            .to_string();

        assert!(
            error.contains("Resources.Q.Properties.FifoQueue"),
            "{error}"
        );
    }

    #[test]
    fn function_settings_come_from_the_function_then_globals_then_lambda_defaults() {
        let template = SMALL_TEMPLATE
            .replace("Resources:\n", "  Function:\n    Timeout: 60\nResources:\n")
            .replace(
                "    Properties:\n      Events:",
                "    Properties:\n      MemorySize: 512\n      Events:",
            );
        let template = Template::parse(&template).unwrap();

        let function = template.function_definition("Fn").unwrap();

        assert_eq!(
            function,
            FunctionDefinition {
                logical_id: "Fn".into(),
                timeout_seconds: 60,
                memory_size_mb: 512,
            }
        );
        let bare = Template::parse(SMALL_TEMPLATE)
            .unwrap()
            .function_definition("Fn")
            .unwrap();
        assert_eq!(bare.timeout_seconds, DEFAULT_FUNCTION_TIMEOUT_SECONDS);
        assert_eq!(bare.memory_size_mb, DEFAULT_FUNCTION_MEMORY_SIZE_MB);
    }

    #[test]
    fn the_bundled_integrations_function_runs_29_seconds_with_256_mb() {
        let function = function_definition("IntegrationsFunction").unwrap();

        assert_eq!(function.timeout_seconds, 29);
        assert_eq!(function.memory_size_mb, 256);
    }

    #[test]
    fn a_missing_table_is_named_in_the_error() {
        let error = Template::parse(SMALL_TEMPLATE)
            .unwrap()
            .definitions()
            .unwrap_err()
            .to_string();

        assert_eq!(error, "infra/template.yaml: Resources.Table is missing");
    }

    #[test]
    fn the_bundled_template_declares_an_on_demand_table_with_the_sync_due_index() {
        let definitions = template_definitions().unwrap();

        assert_eq!(definitions.table.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(
            definitions.table.time_to_live_attribute.as_deref(),
            Some("expiresAt")
        );
        assert_eq!(
            definitions.table.global_secondary_indexes[0].index_name,
            "gsi1"
        );
        assert!(definitions.secrets_key.enable_key_rotation);
        assert_eq!(definitions.queues.len(), 4);
    }

    #[test]
    fn the_bundled_payloads_bucket_is_kms_encrypted_private_and_expires_after_14_days() {
        let bucket = template_definitions().unwrap().payloads_bucket;

        assert_eq!(
            bucket,
            BucketDefinition {
                encryption: Some(BucketEncryptionDefinition {
                    sse_algorithm: "aws:kms".into(),
                    uses_secrets_key: true,
                    bucket_key_enabled: true,
                }),
                public_access_block: Some(PublicAccessBlockDefinition {
                    block_public_acls: true,
                    block_public_policy: true,
                    ignore_public_acls: true,
                    restrict_public_buckets: true,
                }),
                object_ownership: Some("BucketOwnerEnforced".into()),
                lifecycle_rules: vec![LifecycleRuleDefinition {
                    id: "ExpireWithWebhookLogs".into(),
                    enabled: true,
                    prefix: String::new(),
                    expiration_in_days: Some(14),
                    abort_incomplete_multipart_upload_days: Some(1),
                }],
            }
        );
    }

    const SMALL_BUCKET: &str = r#"
Resources:
  PayloadsBucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption:
        ServerSideEncryptionConfiguration:
          - ServerSideEncryptionByDefault:
              SSEAlgorithm: aws:kms
              KMSMasterKeyID: !Ref SecretsKey
"#;

    fn small_bucket(template: &str) -> Result<BucketDefinition, TemplateError> {
        let template = Template::parse(template).unwrap();
        bucket_definition(&template.resource(PAYLOADS_BUCKET, "AWS::S3::Bucket")?)
    }

    #[test]
    fn a_bucket_key_is_the_secrets_key_by_ref_or_get_att_and_no_other() {
        let by_ref = small_bucket(SMALL_BUCKET).unwrap();
        assert_eq!(
            by_ref
                .encryption
                .map(|encryption| encryption.uses_secrets_key),
            Some(true)
        );

        let other = SMALL_BUCKET.replace("!Ref SecretsKey", "!GetAtt OtherKey.Arn");
        let error = small_bucket(&other).unwrap_err().to_string();

        assert!(
            error.contains("KMSMasterKeyID should be the secrets key"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_bucket_property_is_refused_rather_than_silently_dropped() {
        let template =
            format!("{SMALL_BUCKET}      VersioningConfiguration:\n        Status: Enabled\n");

        let error = small_bucket(&template).unwrap_err().to_string();

        assert!(
            error.contains("Resources.PayloadsBucket.Properties.VersioningConfiguration"),
            "{error}"
        );
    }
}
