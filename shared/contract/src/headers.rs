//! The `x-causeway-*` request and response headers, named once for the hub, the agent and the clients.

/// Request header carrying the workload proof (a pre-signed `sts:GetCallerIdentity` request, see
/// [`crate::workload::SignedCallerIdentity`]).
pub const WORKLOAD_HEADER: &str = "x-causeway-workload-identity";

/// Signed header of a proof binding it to one hub (the hub's `identity.server_id`).
pub const SERVER_ID_HEADER: &str = "x-causeway-server-id";

/// Request header naming the calling application.
pub const APPLICATION_HEADER: &str = "x-causeway-application";

/// Request header carrying the user's token where `authorization` holds something else (a SigV4 signature
/// to a hub behind IAM authorization, or a boto3 client's credentials).
pub const USER_TOKEN_HEADER: &str = "x-causeway-user-token";

/// Request header declaring the purpose of a call (doors whose body has no `purpose`, and `GET /v1/models`).
pub const PURPOSE_HEADER: &str = "x-causeway-purpose";

/// Request header raising a call's data classification above its registered floor
/// ([`crate::classification::DataClassification`]).
pub const CLASSIFICATION_HEADER: &str = "x-causeway-data-classification";

/// Response header carrying the id of the call's audit record.
pub const AUDIT_ID_HEADER: &str = "x-causeway-audit-id";
