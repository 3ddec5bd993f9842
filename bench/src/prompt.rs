//! The request every system gets: a realistic business document of about 3 KB with a little personal data
//! (an e-mail address and a phone number) that the hub's default guard profile masks, never blocks.

use serde_json::{Value, json};

/// The model alias in the request. The hub maps it through `policies/catalog.toml` to its OpenAI-compatible
/// provider; LiteLLM is configured with the same name; Portkey and the pass-through forward it unchanged.
pub const MODEL: &str = "llama-internal";

/// The hub's Bedrock alias, used by the optional `hub-bedrock` system.
pub const BEDROCK_MODEL: &str = "claude-haiku";

/// The purpose the hub's Cedar policies permit for the benchmark user's group (`analysts`).
pub const PURPOSE: &str = "analytics";

/// `max_tokens` sent with every request.
pub const MAX_TOKENS: u32 = 256;

/// The user's message.
pub fn document() -> String {
    let mut text = String::from(
        "Please summarise the following case file for the account manager and draft a short reply to the \
         customer.\n\nCASE FILE 2026-0412: Business current account, Harbourside Joinery Ltd\n\n",
    );
    let sections = [
        "Background. Harbourside Joinery Ltd has held a business current account with us since 2014. The \
         account is used for supplier payments, payroll for eleven employees and quarterly VAT payments. \
         The relationship is managed by the regional commercial team and the account has no arrears, no \
         overdraft excess and no open complaints before this one.",
        "What happened. On 3 March the monthly direct debit to the equipment leasing company was collected \
         twice, once in the morning batch and again in the afternoon batch, for the same amount. The \
         customer noticed the duplicate when reconciling the statement at the end of the month and called \
         the business helpline. The call handler confirmed that both collections carry the same mandate \
         reference and the same originator identification number.",
        "Customer's request. The finance manager asked three things: whether the second collection will be \
         refunded automatically under the Direct Debit Guarantee, how long the refund usually takes, and \
         whether the leasing company will treat the refund as a missed payment. She also asked that future \
         correspondence about the case go to her directly rather than to the general company mailbox.",
        "Checks done so far. Payments operations confirmed the duplicate came from a file resubmission by \
         the originator's bureau, not from our systems. The originator has been notified through the \
         scheme's indemnity process. The refund has been raised and is due to reach the account within \
         three to five working days. No charges or interest arose from the duplicate because the account \
         stayed in credit throughout the month.",
        "Notes for the reply. Apologise for the inconvenience even though the error was the originator's. \
         Confirm the refund date range and that the Direct Debit Guarantee covers the customer in full. \
         Explain that the leasing company has been told through the scheme and should not treat the refund \
         as a missed payment. Offer a named contact for follow-up questions and mention that the statement \
         for April will show the refund as a separate credit line.",
        "Internal classification. Internal. The case contains the customer's contact details and no payment \
         card or account numbers. Retention follows the standard complaints schedule of six years after \
         closure.",
    ];
    for section in sections {
        text.push_str(section);
        text.push_str("\n\n");
    }
    text.push_str(
        "Contact for this case: Priya Raman, finance manager, priya.raman@harbourside-joinery.example, \
         telephone +44 20 7946 0958.\n",
    );
    text
}

/// The OpenAI chat completions body every system gets.
pub fn chat_body(stream: bool) -> Value {
    let mut body = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": document()}],
        "max_tokens": MAX_TOKENS,
    });
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// The same body for the hub's Bedrock alias.
pub fn chat_body_bedrock(stream: bool) -> Value {
    let mut body = chat_body(stream);
    body["model"] = json!(BEDROCK_MODEL);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_between_two_and_four_kilobytes() {
        let len = document().len();
        assert!((2048..=4096).contains(&len), "document is {len} bytes");
    }

    #[test]
    fn the_body_carries_the_alias_and_stream_flag() {
        let body = chat_body(true);
        assert_eq!(body["model"], MODEL);
        assert_eq!(body["stream"], true);
        assert_eq!(chat_body_bedrock(false)["model"], BEDROCK_MODEL);
    }
}
