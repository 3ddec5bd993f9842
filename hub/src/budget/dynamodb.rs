//! Budget counters in DynamoDB, shared by every hub instance.
//!
//! One item per subject, metric and window: `pk` (string, the counter key), `used` (number) and `expires_at`
//! (number, epoch seconds; make it the table's TTL attribute so old windows delete themselves). Every add is one
//! `UpdateItem` with `ADD used :amount` under the condition `attribute_not_exists(used) OR used <= :headroom`
//! (`headroom` = limit − amount): DynamoDB applies it atomically or refuses it, so no number of concurrent
//! instances can push a counter past its limit.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{BudgetError, BudgetStore};

/// Counters in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    /// A store on `table`, with a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn unavailable(err: impl std::error::Error) -> BudgetError {
    BudgetError::Unavailable(format!("dynamodb: {}", DisplayErrorContext(err)))
}

#[async_trait]
impl BudgetStore for DynamoDbStore {
    async fn try_add(
        &self,
        key: &str,
        amount: u64,
        limit: u64,
        expires_unix: i64,
    ) -> Result<bool, BudgetError> {
        let Some(headroom) = limit.checked_sub(amount) else {
            return Ok(false);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression(
                "ADD used :amount SET expires_at = if_not_exists(expires_at, :expires)",
            )
            .condition_expression("attribute_not_exists(used) OR used <= :headroom")
            .expression_attribute_values(":amount", AttributeValue::N(amount.to_string()))
            .expression_attribute_values(":headroom", AttributeValue::N(headroom.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_unix.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn adjust(&self, key: &str, delta: i64, expires_unix: i64) -> Result<(), BudgetError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression(
                "ADD used :delta SET expires_at = if_not_exists(expires_at, :expires)",
            )
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_unix.to_string()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn used(&self, key: &str) -> Result<u64, BudgetError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(item
            .item()
            .and_then(|i| i.get("used"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}
