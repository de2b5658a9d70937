//! What can go wrong sealing or opening an envelope. No message carries plaintext, key material,
//! or the KMS key ARN (KMS error messages often name it, so only their error code is kept).

use std::fmt;

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::layout::EnvelopeFormatError;

/// The KMS operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsOperation {
    GenerateDataKey,
    Decrypt,
}

impl fmt::Display for KmsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GenerateDataKey => "GenerateDataKey",
            Self::Decrypt => "Decrypt",
        })
    }
}

/// Why an envelope that is well-formed still cannot be opened for the slot it was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenRefusal {
    /// KMS would not release the data key: the tenant in the encryption context differs, or the
    /// data key was encrypted under another KMS key, or the encrypted data key was altered.
    #[error("KMS refused to decrypt its data key ({code}): it belongs to another tenant or KMS key, or was altered")]
    DataKeyRefused { code: String },
    /// AES-GCM authentication failed: the envelope belongs to another owner or field, or its
    /// nonce or ciphertext was altered.
    #[error("its authentication tag does not match: it belongs to another owner or field, or was altered")]
    TagMismatch,
}

/// Errors of [`super::EnvelopeCipher`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("malformed secret envelope: {0}")]
    MalformedEnvelope(#[from] EnvelopeFormatError),
    #[error("the secret envelope cannot be opened for this tenant, owner and field: {0}")]
    CannotOpen(OpenRefusal),
    /// Throttling, a KMS-side fault or a network failure: the same request may succeed later.
    #[error("KMS {operation} is unavailable ({kind}); the request can be retried")]
    KmsUnavailable {
        operation: KmsOperation,
        kind: String,
    },
    /// KMS answered but will not do this for us (unknown or disabled key, no permission): retrying
    /// will not help until the configuration changes.
    #[error("KMS {operation} refused the request ({code}); check the key id, its state and the function's permissions")]
    KmsRefused {
        operation: KmsOperation,
        code: String,
    },
    #[error("KMS {operation} returned an unusable response: {problem}")]
    KmsBadResponse {
        operation: KmsOperation,
        problem: &'static str,
    },
    #[error("a secret of {len} bytes is too large for AES-GCM")]
    SecretTooLarge { len: usize },
    /// serde_json's own message can quote the value, so only its category is kept.
    #[error("the secret value cannot be serialised as JSON ({category} error)")]
    SecretNotSerializable { category: &'static str },
    /// serde_json's own message can quote the value, so only its category and position are kept.
    #[error("the opened secret is not the expected JSON ({category} error at line {line}, column {column})")]
    SecretNotExpectedJson {
        category: &'static str,
        line: usize,
        column: usize,
    },
}

impl CryptoError {
    /// True when the same call may succeed if retried later (KMS throttling, outage, network).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::KmsUnavailable { .. })
    }

    pub(crate) fn from_kms<E>(operation: KmsOperation, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = match &error {
            SdkError::ServiceError(context) => KmsFailure::Service {
                code: error.code().unwrap_or("UnknownError"),
                status: context.raw().status().as_u16(),
            },
            SdkError::TimeoutError(_) => KmsFailure::Transport("timeout"),
            SdkError::DispatchFailure(_) => KmsFailure::Transport("connection failure"),
            SdkError::ResponseError(_) => KmsFailure::Transport("unreadable response"),
            SdkError::ConstructionFailure(_) => KmsFailure::RequestNotBuilt,
            _ => KmsFailure::Transport("unknown SDK failure"),
        };
        let classified = classify_kms_failure(operation, failure);
        if !matches!(classified, Self::CannotOpen(_)) {
            // The full SDK message (which may name the key ARN) goes to the operator's log only.
            tracing::warn!(
                kms.operation = %operation,
                error = %DisplayErrorContext(&error),
                "KMS call failed"
            );
        }
        classified
    }

    pub(crate) fn from_json(error: &serde_json::Error, opening: bool) -> Self {
        let category = match error.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "unexpected end",
        };
        if opening {
            Self::SecretNotExpectedJson {
                category,
                line: error.line(),
                column: error.column(),
            }
        } else {
            Self::SecretNotSerializable { category }
        }
    }
}

/// A KMS failure reduced to what decides its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KmsFailure<'a> {
    Service { code: &'a str, status: u16 },
    Transport(&'static str),
    RequestNotBuilt,
}

/// KMS error codes that mean "try again later" (AWS documents these as retryable).
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "KMSInternalException",
    "KMSInternalFailure",
    "InternalFailure",
    "ServiceUnavailable",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Decrypt codes that mean "this ciphertext is not yours to open". moto answers a wrong KeyId with
/// AccessDeniedException where AWS answers IncorrectKeyException.
const REFUSED_CIPHERTEXT_CODES: &[&str] = &[
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "AccessDeniedException",
];

pub(crate) fn classify_kms_failure(
    operation: KmsOperation,
    failure: KmsFailure<'_>,
) -> CryptoError {
    match failure {
        KmsFailure::Service { code, status } => {
            if RETRYABLE_CODES.contains(&code) || status == 429 || status >= 500 {
                CryptoError::KmsUnavailable {
                    operation,
                    kind: code.to_owned(),
                }
            } else if operation == KmsOperation::Decrypt && REFUSED_CIPHERTEXT_CODES.contains(&code)
            {
                CryptoError::CannotOpen(OpenRefusal::DataKeyRefused {
                    code: code.to_owned(),
                })
            } else {
                CryptoError::KmsRefused {
                    operation,
                    code: code.to_owned(),
                }
            }
        }
        KmsFailure::Transport(kind) => CryptoError::KmsUnavailable {
            operation,
            kind: kind.to_owned(),
        },
        KmsFailure::RequestNotBuilt => CryptoError::KmsRefused {
            operation,
            code: "request could not be built".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> KmsFailure<'_> {
        KmsFailure::Service { code, status }
    }

    #[test]
    fn throttling_and_kms_faults_are_retryable() {
        for (code, status) in [
            ("ThrottlingException", 400),
            ("KMSInternalException", 500),
            ("DependencyTimeoutException", 503),
            ("KeyUnavailableException", 500),
            ("SomethingNew", 503),
            ("SomethingNew", 429),
        ] {
            for operation in [KmsOperation::GenerateDataKey, KmsOperation::Decrypt] {
                let error = classify_kms_failure(operation, service(code, status));
                assert!(
                    error.is_retryable(),
                    "{code}/{status} on {operation}: {error}"
                );
                assert!(error.to_string().contains(code), "{error}");
            }
        }
    }

    #[test]
    fn network_failures_are_retryable() {
        let error = classify_kms_failure(KmsOperation::Decrypt, KmsFailure::Transport("timeout"));
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "KMS Decrypt is unavailable (timeout); the request can be retried"
        );
    }

    #[test]
    fn refused_ciphertext_on_decrypt_means_cannot_open() {
        for code in [
            "InvalidCiphertextException",
            "IncorrectKeyException",
            "AccessDeniedException",
        ] {
            let error = classify_kms_failure(KmsOperation::Decrypt, service(code, 400));
            assert!(
                matches!(&error, CryptoError::CannotOpen(OpenRefusal::DataKeyRefused { code: c }) if c == code),
                "{error:?}"
            );
            assert!(!error.is_retryable());
        }
    }

    #[test]
    fn configuration_problems_are_refusals_that_are_not_retried() {
        for (operation, code) in [
            (KmsOperation::GenerateDataKey, "AccessDeniedException"),
            (KmsOperation::GenerateDataKey, "NotFoundException"),
            (KmsOperation::Decrypt, "DisabledException"),
            (KmsOperation::Decrypt, "KMSInvalidStateException"),
        ] {
            let error = classify_kms_failure(operation, service(code, 400));
            assert!(matches!(error, CryptoError::KmsRefused { .. }), "{error:?}");
            assert!(!error.is_retryable());
        }
    }

    #[test]
    fn json_errors_keep_no_quoted_value() {
        let error = serde_json::from_str::<u32>("\"hunter2-secret\"").expect_err("not a number");
        assert!(
            error.to_string().contains("hunter2"),
            "serde_json quotes the value"
        );
        let ours = CryptoError::from_json(&error, true);
        assert!(!ours.to_string().contains("hunter2"), "{ours}");
        assert!(!format!("{ours:?}").contains("hunter2"), "{ours:?}");
        assert_eq!(
            ours.to_string(),
            "the opened secret is not the expected JSON (data error at line 1, column 16)"
        );
    }
}
