//! Content that OpenAI-shaped doors carry as `data:` URIs (chat completions' `image_url` and `file` parts,
//! Responses' `input_image` and `input_file`), decoded once for every door. The hub fetches nothing on a
//! caller's behalf: anything but a base64 `data:` URI is refused with a message that says to send the bytes.

use base64::Engine as _;
use causeway_contract::content::{Bytes, ContentBlock, DocumentFormat, ImageFormat};

use crate::error::HubError;

fn invalid<T>(message: String) -> Result<T, HubError> {
    Err(HubError::InvalidRequest(message))
}

/// `data:<media type>;base64,<data>` → (media type, bytes). `at` names the field in the message.
pub(crate) fn data_uri(uri: &str, at: &str) -> Result<(String, Vec<u8>), HubError> {
    let problem = |what: &str| HubError::InvalidRequest(format!("`{at}` {what}"));
    let Some(rest) = uri.strip_prefix("data:") else {
        return Err(problem(
            "must be a `data:` URI carrying the bytes (base64); the hub fetches nothing on a caller's behalf",
        ));
    };
    let Some((header, data)) = rest.split_once(',') else {
        return Err(problem("is a `data:` URI without a `,`"));
    };
    let Some(media_type) = header.strip_suffix(";base64") else {
        return Err(problem(
            "must be a base64 `data:` URI (`data:<media type>;base64,…`)",
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim().as_bytes())
        .map_err(|e| problem(&format!("is not valid base64: {e}")))?;
    Ok((media_type.to_owned(), bytes))
}

/// An image block from the `data:` URI in field `at`.
pub(crate) fn image(uri: &str, at: &str) -> Result<ContentBlock, HubError> {
    let (media_type, bytes) = data_uri(uri, at)?;
    let Some(format) = ImageFormat::from_media_type(&media_type) else {
        return invalid(format!(
            "`{at}` has media type `{}`; use `image/png`, `image/jpeg`, `image/gif` or `image/webp`",
            super::extract::shown(&media_type)
        ));
    };
    Ok(ContentBlock::Image {
        media_type: format,
        data: Bytes(bytes),
    })
}

/// A document block from the `data:` URI in field `at`, named `filename` (kept to a plain file name, since
/// the model sees it). The format comes from the media type, or else from the name's extension.
pub(crate) fn document(
    uri: &str,
    filename: Option<&str>,
    at: &str,
) -> Result<ContentBlock, HubError> {
    let (media_type, bytes) = data_uri(uri, at)?;
    let name = filename
        .and_then(|n| n.rsplit(['/', '\\']).next())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("document")
        .to_owned();
    let extension = name.rsplit_once('.').map(|(_, e)| e);
    let Some(format) = DocumentFormat::from_media_type(&media_type)
        .or_else(|| extension.and_then(DocumentFormat::from_name))
    else {
        return invalid(format!(
            "`{at}` has media type `{}`, which is not a supported document format (pdf, docx, txt, md, csv, html, json, doc, xls, xlsx)",
            super::extract::shown(&media_type)
        ));
    };
    Ok(ContentBlock::Document {
        format,
        name,
        data: Bytes(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_and_bad_data_are_named() {
        let err = image(
            "https://example.com/cat.png",
            "messages[0].content[1].image_url.url",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`messages[0].content[1].image_url.url` must be a `data:` URI"),
            "{err}"
        );
        let err = image("data:image/tiff;base64,AAAA", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("media type `image/tiff`"), "{err}");
        let err = data_uri("data:image/png;base64,@@@", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid base64"), "{err}");
    }

    #[test]
    fn a_document_takes_its_format_from_the_media_type_or_the_name() {
        let block = document(
            "data:application/octet-stream;base64,aGk=",
            Some("../notes.md"),
            "f",
        )
        .unwrap();
        assert!(matches!(
            block,
            ContentBlock::Document { format: DocumentFormat::Md, ref name, .. } if name == "notes.md"
        ));
        let block = document("data:application/pdf;base64,aGk=", None, "f").unwrap();
        assert!(matches!(
            block,
            ContentBlock::Document { format: DocumentFormat::Pdf, ref name, .. } if name == "document"
        ));
    }
}
