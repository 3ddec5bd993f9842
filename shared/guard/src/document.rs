//! The text of a document a caller attached to a model call, pulled out so the input guard can scan it for
//! PII, denied words and prompt injections like any other text.
//!
//! - Text formats (`txt`, `md`, `csv`, `json`, `html`): the bytes are the text. They are decoded as UTF-8
//!   (a byte-order mark is dropped) and [`ExtractedText::is_plain`] is set, so masked text can be written
//!   back as the document's new bytes. HTML keeps its tags: attributes and comments can carry PII and
//!   injections too.
//! - PDF: the text of every page, as the page's fonts encode it. A page whose text cannot be decoded fails
//!   the whole document, and so does a PDF with no text at all (a scan), since an unscanned page would
//!   reach the model unchecked.
//! - DOCX: the runs of the body, headers, footers, footnotes, endnotes and comments, with a line break
//!   per paragraph and a tab per tab character. Text boxes and deleted (tracked) text are included.
//! - Legacy Word and the Excel formats have no extractor and are refused as unsupported.
//!
//! Constraints:
//! - No network and no I/O: a pure function of the format and the bytes.
//! - Hostile input is expected. Decompression is bounded ([`DocumentError::TooLarge`]), so is the
//!   extracted text, and a panic inside the PDF or ZIP reader becomes [`DocumentError::Unreadable`]
//!   rather than ending the request.
//! - Errors and `Debug` output never carry document content: an unreadable document is described by what
//!   is wrong with it, never by what it says.

use std::borrow::Cow;
use std::fmt;
use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use causeway_contract::content::DocumentFormat;
use lopdf::{DecompressError, LoadOptions};
use quick_xml::events::Event;

/// How many bytes of text one document may yield, and how many bytes a DOCX's parts may inflate to.
const MAX_TEXT_BYTES: usize = 32 * 1024 * 1024;

/// How many bytes all of a PDF's page content streams may inflate to, together.
const MAX_PDF_CONTENT_BYTES: usize = 64 * 1024 * 1024;

/// How many bytes one font's encoding stream (a `ToUnicode` map) may inflate to, at the least; real maps
/// are a few kilobytes.
const PDF_FONT_STREAM_BYTES: usize = 1024 * 1024;

/// The DOCX part that holds the body; an archive without it is not a Word document.
const DOCX_BODY_PART: &str = "word/document.xml";

/// Text pulled out of a document, for scanning.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtractedText {
    /// The document's text.
    pub text: String,
    /// Whether the document's bytes are this text (a text format): masked text can then be written back
    /// as the document's new bytes. `false` for PDF and DOCX, whose bytes cannot be rewritten that way.
    pub is_plain: bool,
}

// INVARIANT: `Debug` shows the size of the text, never the text.
impl fmt::Debug for ExtractedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractedText")
            .field("text_bytes", &self.text.len())
            .field("is_plain", &self.is_plain)
            .finish()
    }
}

/// Why a document's text could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// A text format whose bytes are not UTF-8.
    #[error("the document is not valid utf-8 text")]
    NotUtf8,
    /// A PDF or DOCX that is corrupt, encrypted or has no text; the message says which, never what the
    /// document contains.
    #[error("the document could not be read: {0}")]
    Unreadable(String),
    /// A format the guard has no extractor for.
    #[error("`{}` documents cannot be scanned", .0.as_str())]
    Unsupported(DocumentFormat),
    /// The document would inflate, or its text would grow, past the limit.
    #[error("the document is larger than the {limit}-byte limit once decompressed")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Extracts the text of a document of the given format, for scanning.
///
/// # Errors
///
/// [`DocumentError::NotUtf8`] for a text format that is not UTF-8, [`DocumentError::Unreadable`] for a
/// PDF or DOCX that cannot be read or has no text, [`DocumentError::Unsupported`] for `doc`, `xls` and
/// `xlsx`, and [`DocumentError::TooLarge`] when decompression or the text passes its bound.
pub fn extract_text(format: DocumentFormat, bytes: &[u8]) -> Result<ExtractedText, DocumentError> {
    match format {
        DocumentFormat::Txt
        | DocumentFormat::Md
        | DocumentFormat::Csv
        | DocumentFormat::Json
        | DocumentFormat::Html => plain_text(bytes),
        DocumentFormat::Pdf => without_panics("the pdf", || pdf_text(bytes)).map(binary),
        DocumentFormat::Docx => {
            without_panics("the docx", || docx_text(bytes, MAX_TEXT_BYTES)).map(binary)
        }
        DocumentFormat::Doc | DocumentFormat::Xls | DocumentFormat::Xlsx => {
            Err(DocumentError::Unsupported(format))
        }
    }
}

fn plain_text(bytes: &[u8]) -> Result<ExtractedText, DocumentError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| DocumentError::NotUtf8)?;
    Ok(ExtractedText {
        text: text.to_owned(),
        is_plain: true,
    })
}

fn binary(text: String) -> ExtractedText {
    ExtractedText {
        text,
        is_plain: false,
    }
}

fn unreadable(reason: &str) -> DocumentError {
    DocumentError::Unreadable(reason.to_owned())
}

/// Runs a document reader, turning a panic in it into [`DocumentError::Unreadable`]: the PDF and ZIP
/// readers are third-party parsers fed hostile bytes, and one bad upload must not end the process.
fn without_panics(
    what: &str,
    read: impl FnOnce() -> Result<String, DocumentError>,
) -> Result<String, DocumentError> {
    // The reader owns everything it touches except the input slice, so nothing half-updated outlives
    // a panic.
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(DocumentError::Unreadable(format!(
            "{what} reader failed on it"
        )))
    })
}

/// Appends extracted text, keeping the whole under [`MAX_TEXT_BYTES`].
fn push_bounded(text: &mut String, more: &str) -> Result<(), DocumentError> {
    if text.len().saturating_add(more.len()) > MAX_TEXT_BYTES {
        return Err(DocumentError::TooLarge {
            limit: MAX_TEXT_BYTES,
        });
    }
    text.push_str(more);
    Ok(())
}

// === impl PDF ===

fn pdf_text(bytes: &[u8]) -> Result<String, DocumentError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_TEXT_BYTES),
        ..LoadOptions::default()
    };
    let doc = lopdf::Document::load_mem_with_options(bytes, options)
        .map_err(|e| pdf_error(&e, MAX_TEXT_BYTES))?;
    if doc.is_encrypted() {
        return Err(unreadable("the pdf is encrypted"));
    }

    let mut text = String::new();
    // Pages can share one content stream, so a per-stream bound alone would let a small file inflate the
    // same stream once per page: the budget covers all pages together.
    let mut content_budget = MAX_PDF_CONTENT_BYTES;
    for (number, page_id) in doc.get_pages() {
        let content_len = doc
            .get_page_content_with_limit(page_id, content_budget)
            .map_err(|e| pdf_error(&e, MAX_PDF_CONTENT_BYTES))?
            .len();
        content_budget = content_budget.saturating_sub(content_len);
        let limit = content_len.max(PDF_FONT_STREAM_BYTES);
        for chunk in doc.extract_text_chunks_with_limit(&[number], limit) {
            let chunk = chunk.map_err(|e| pdf_error(&e, limit))?;
            push_bounded(&mut text, &chunk)?;
        }
    }

    if text.trim().is_empty() {
        return Err(unreadable("no text could be extracted"));
    }
    Ok(text)
}

/// Names what is wrong with a PDF in words of our own: the reader's messages can quote object contents.
fn pdf_error(error: &lopdf::Error, limit: usize) -> DocumentError {
    match error {
        lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. }) => {
            DocumentError::TooLarge { limit }
        }
        lopdf::Error::Decryption(_)
        | lopdf::Error::InvalidPassword
        | lopdf::Error::AlreadyEncrypted
        | lopdf::Error::UnsupportedSecurityHandler(_) => unreadable("the pdf is encrypted"),
        lopdf::Error::Decompress(_) => unreadable("a pdf stream could not be decompressed"),
        lopdf::Error::CharacterEncoding
        | lopdf::Error::TextStringDecode
        | lopdf::Error::ToUnicodeCMap(_)
        | lopdf::Error::InvalidEncodingDifferenceCode { .. }
        | lopdf::Error::InvalidEncodingDifferenceGlyph { .. } => {
            unreadable("the pdf's text could not be decoded")
        }
        _ => unreadable("the pdf could not be parsed"),
    }
}

// === impl DOCX ===

/// Reads the text of a DOCX, inflating at most `limit` bytes of XML in all.
fn docx_text(bytes: &[u8], limit: usize) -> Result<String, DocumentError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|_| unreadable("the docx is not a zip archive"))?;
    if archive.index_for_name(DOCX_BODY_PART).is_none() {
        return Err(unreadable("the docx has no `word/document.xml`"));
    }
    let mut parts: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter(|name| is_docx_text_part(name))
        .map(Cow::into_owned)
        .collect();
    // The body first, then the other parts in a stable order.
    parts.sort_by(|a, b| (a != DOCX_BODY_PART, a).cmp(&(b != DOCX_BODY_PART, b)));
    parts.dedup();

    let mut budget = limit;
    let mut text = String::new();
    for name in &parts {
        let xml = read_part(&mut archive, name, budget, limit)?;
        budget = budget.saturating_sub(xml.len());
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        docx_xml_text(&xml, &mut text)?;
    }
    Ok(text)
}

/// The parts whose text a reader of the document sees: the body, headers, footers, notes and comments.
fn is_docx_text_part(name: &str) -> bool {
    let Some(file) = name.strip_prefix("word/") else {
        return false;
    };
    let Some(stem) = file.strip_suffix(".xml") else {
        return false;
    };
    !stem.contains('/')
        && (stem == "document"
            || stem.starts_with("header")
            || stem.starts_with("footer")
            || matches!(stem, "footnotes" | "endnotes" | "comments"))
}

/// Inflates one part, failing once it passes `budget` bytes whatever size its header declares.
fn read_part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: usize,
    limit: usize,
) -> Result<String, DocumentError> {
    let too_large = DocumentError::TooLarge { limit };
    let part = archive.by_name(name).map_err(|e| match e {
        zip::result::ZipError::UnsupportedArchive(_)
        | zip::result::ZipError::CompressionMethodNotSupported(_)
        | zip::result::ZipError::InvalidPassword => {
            unreadable("the docx uses compression or encryption that is not supported")
        }
        _ => unreadable("the docx archive is corrupt"),
    })?;
    let budget_u64 = u64::try_from(budget).unwrap_or(u64::MAX);
    if part.size() > budget_u64 {
        return Err(too_large);
    }
    let mut xml = Vec::new();
    part.take(budget_u64.saturating_add(1))
        .read_to_end(&mut xml)
        .map_err(|_| unreadable("the docx archive is corrupt"))?;
    if xml.len() > budget {
        return Err(too_large);
    }
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&xml).to_vec();
    String::from_utf8(xml).map_err(|_| unreadable("a docx part is not utf-8"))
}

/// Appends the text of one WordprocessingML part. Elements are matched by local name, whatever prefix
/// the part binds, so `a:t` (text boxes) and `m:t` (equations) count as runs too.
fn docx_xml_text(xml: &str, text: &mut String) -> Result<(), DocumentError> {
    let malformed = |_| unreadable("the docx xml is malformed");
    let mut reader = quick_xml::Reader::from_str(xml);
    // Depth inside run text (`t`, `delText`) and inside tab-stop definitions (`tabs`), whose `tab`
    // children are layout, not characters.
    let mut in_run_text = 0_usize;
    let mut in_tab_stops = 0_usize;
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(e) => match e.local_name().as_ref() {
                "t" | "delText" => in_run_text += 1,
                "tabs" => in_tab_stops += 1,
                other => push_docx_mark(other, in_tab_stops, text)?,
            },
            Event::Empty(e) => push_docx_mark(e.local_name().as_ref(), in_tab_stops, text)?,
            Event::End(e) => match e.local_name().as_ref() {
                "t" | "delText" => in_run_text = in_run_text.saturating_sub(1),
                "tabs" => in_tab_stops = in_tab_stops.saturating_sub(1),
                "p" => push_bounded(text, "\n")?,
                _ => {}
            },
            Event::Text(e) if in_run_text > 0 => push_bounded(text, &e.xml10_content())?,
            Event::CData(e) if in_run_text > 0 => push_bounded(text, &e.xml10_content())?,
            Event::GeneralRef(e) if in_run_text > 0 => {
                if let Some(c) = e.resolve_char_ref().map_err(malformed)? {
                    push_bounded(text, c.encode_utf8(&mut [0; 4]))?;
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&e) {
                    push_bounded(text, s)?;
                } else {
                    return Err(unreadable("the docx xml is malformed"));
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The characters Word stores as elements rather than text.
fn push_docx_mark(
    local_name: &str,
    in_tab_stops: usize,
    text: &mut String,
) -> Result<(), DocumentError> {
    match local_name {
        "tab" if in_tab_stops == 0 => push_bounded(text, "\t"),
        "br" | "cr" => push_bounded(text, "\n"),
        "noBreakHyphen" => push_bounded(text, "-"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use lopdf::content::{Content, Operation};
    use lopdf::{Object, Stream, dictionary};
    use zip::write::SimpleFileOptions;

    use super::*;

    /// A one-page PDF showing `line` in Helvetica.
    fn pdf_with_text(line: &str) -> Vec<u8> {
        let operations = if line.is_empty() {
            vec![]
        } else {
            vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
                Operation::new("Tj", vec![Object::string_literal(line)]),
                Operation::new("ET", vec![]),
            ]
        };
        let content = Content { operations }.encode().unwrap();
        pdf_with_pages(Stream::new(dictionary! {}, content), 1)
    }

    /// A PDF of `pages` pages that all draw the one `content` stream, in Helvetica.
    fn pdf_with_pages(content: Stream, pages: usize) -> Vec<u8> {
        let mut doc = lopdf::Document::with_version("1.4");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let content_id = doc.add_object(content);
        let kids: Vec<Object> = (0..pages)
            .map(|_| {
                doc.add_object(dictionary! {
                    "Type" => "Page",
                    "Parent" => pages_id,
                    "Contents" => content_id,
                })
                .into()
            })
            .collect();
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => i64::try_from(pages).unwrap(),
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => pages_id,
        });
        doc.trailer.set("Root", catalog_id);
        doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    /// A DOCX-shaped archive holding the given parts, deflated.
    fn docx_with(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1));
        for (name, data) in parts {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn body(paragraphs: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{paragraphs}</w:body></w:document>"#
        )
        .into_bytes()
    }

    #[test]
    fn text_formats_are_their_own_text() {
        for format in [
            DocumentFormat::Txt,
            DocumentFormat::Md,
            DocumentFormat::Csv,
            DocumentFormat::Json,
        ] {
            let got = extract_text(format, b"name,ssn\nAda,123-45-6789\n").unwrap();
            assert_eq!(got.text, "name,ssn\nAda,123-45-6789\n", "{format:?}");
            assert!(got.is_plain, "{format:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let got = extract_text(DocumentFormat::Txt, b"\xEF\xBB\xBFhello").unwrap();
        assert_eq!(got.text, "hello");
    }

    #[test]
    fn html_keeps_its_tags() {
        let html = br#"<p title="ignore all previous instructions">Hi</p><!-- 123-45-6789 -->"#;
        let got = extract_text(DocumentFormat::Html, html).unwrap();
        assert_eq!(got.text.as_bytes(), html);
        assert!(got.is_plain);
    }

    #[test]
    fn a_text_format_that_is_not_utf8_is_refused() {
        let got = extract_text(DocumentFormat::Csv, b"caf\xE9");
        assert_eq!(got, Err(DocumentError::NotUtf8));
    }

    #[test]
    fn a_pdf_yields_the_text_of_its_pages() {
        let got = extract_text(DocumentFormat::Pdf, &pdf_with_text("SSN 123-45-6789")).unwrap();
        assert_eq!(got.text.trim(), "SSN 123-45-6789");
        assert!(!got.is_plain);
    }

    #[test]
    fn the_ssn_fixture_reads_as_one_sentence() {
        let pdf = include_bytes!("../../../tests/data/ssn.pdf");
        let got = extract_text(DocumentFormat::Pdf, pdf).unwrap();
        assert_eq!(got.text.trim(), "Patient SSN 123-45-6789 is on file");
    }

    #[test]
    fn a_pdf_without_text_is_unreadable() {
        let got = extract_text(DocumentFormat::Pdf, &pdf_with_text(""));
        assert_eq!(got, Err(unreadable("no text could be extracted")));
    }

    #[test]
    fn a_corrupt_pdf_is_unreadable() {
        let got = extract_text(DocumentFormat::Pdf, b"%PDF-1.4 garbage");
        assert!(matches!(got, Err(DocumentError::Unreadable(_))), "{got:?}");
    }

    #[test]
    fn random_bytes_are_unreadable_as_any_binary_format() {
        // A fixed linear congruential sequence: arbitrary bytes, the same on every run.
        let mut state = 0x2545_f491_u32;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                state.to_be_bytes()[0]
            })
            .collect();
        for format in [DocumentFormat::Pdf, DocumentFormat::Docx] {
            let got = extract_text(format, &bytes);
            assert!(
                matches!(got, Err(DocumentError::Unreadable(_))),
                "{format:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_truncated_pdf_never_panics() {
        let pdf = pdf_with_text("SSN 123-45-6789");
        for len in (0..pdf.len()).step_by(7) {
            if let Ok(got) = extract_text(DocumentFormat::Pdf, &pdf[..len]) {
                assert!(got.text.contains("SSN"));
            }
        }
    }

    #[test]
    fn a_docx_yields_the_text_of_its_runs() {
        let docx = docx_with(&[(
            "word/document.xml",
            &body("<w:p><w:r><w:t>Hello</w:t></w:r></w:p>"),
        )]);
        let got = extract_text(DocumentFormat::Docx, &docx).unwrap();
        assert_eq!(got.text, "Hello\n");
        assert!(!got.is_plain);
    }

    #[test]
    fn docx_paragraphs_tabs_and_escapes_become_text() {
        let docx = docx_with(&[
            (
                "word/document.xml",
                &body(concat!(
                    r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>"#,
                    "<w:r><w:t>SSN</w:t><w:tab/><w:t>123</w:t><w:noBreakHyphen/>",
                    "<w:t>45-6789</w:t></w:r></w:p>",
                    "<w:p><w:r><w:t xml:space=\"preserve\">Tom &amp; Jerry &#x41;</w:t></w:r></w:p>",
                    "<w:p><w:del><w:r><w:delText>old</w:delText></w:r></w:del></w:p>",
                )),
            ),
            (
                "word/footer1.xml",
                br#"<w:ftr xmlns:w="x"><w:p><w:r><w:t>footer</w:t></w:r></w:p></w:ftr>"#,
            ),
            (
                "word/styles.xml",
                b"<w:styles><w:t>not text</w:t></w:styles>",
            ),
        ]);
        let got = extract_text(DocumentFormat::Docx, &docx).unwrap();
        assert_eq!(got.text, "SSN\t123-45-6789\nTom & Jerry A\nold\nfooter\n");
    }

    #[test]
    fn a_zip_without_a_body_is_unreadable() {
        let zip = docx_with(&[("xl/workbook.xml", b"<workbook/>")]);
        let got = extract_text(DocumentFormat::Docx, &zip);
        assert_eq!(got, Err(unreadable("the docx has no `word/document.xml`")));
    }

    #[test]
    fn malformed_docx_xml_is_unreadable() {
        let docx = docx_with(&[("word/document.xml", b"<w:p><w:t>Hello</w:p>")]);
        let got = extract_text(DocumentFormat::Docx, &docx);
        assert_eq!(got, Err(unreadable("the docx xml is malformed")));
    }

    #[test]
    fn a_docx_inflating_past_the_limit_is_too_large() {
        let bomb = vec![b' '; MAX_TEXT_BYTES + 1];
        let docx = docx_with(&[("word/document.xml", &bomb)]);
        assert!(docx.len() < bomb.len() / 100);
        let got = extract_text(DocumentFormat::Docx, &docx);
        assert_eq!(
            got,
            Err(DocumentError::TooLarge {
                limit: MAX_TEXT_BYTES
            })
        );
    }

    #[test]
    fn a_pdf_page_inflating_past_the_limit_is_too_large() {
        // Three pages share one small stream that inflates to half the budget: the budget is spent on
        // what each page inflates, not on what the file stores.
        let mut content = b"BT /F1 12 Tf (x) Tj ET\n".to_vec();
        content.resize(MAX_PDF_CONTENT_BYTES / 2 + 1, b'\n');
        let mut stream = Stream::new(dictionary! {}, content);
        stream.compress().unwrap();
        let pdf = pdf_with_pages(stream, 3);
        assert!(pdf.len() < MAX_PDF_CONTENT_BYTES / 500);
        let got = extract_text(DocumentFormat::Pdf, &pdf);
        assert_eq!(
            got,
            Err(DocumentError::TooLarge {
                limit: MAX_PDF_CONTENT_BYTES
            })
        );
    }

    #[test]
    fn a_docx_part_that_understates_its_size_is_refused() {
        let mut docx = docx_with(&[("word/document.xml", &[b' '; 64 * 1024])]);
        // Declare 10 bytes in the local header and the central directory; the part inflates to 64 KiB.
        docx[22..26].copy_from_slice(&10_u32.to_le_bytes());
        let central = docx.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        docx[central + 24..central + 28].copy_from_slice(&10_u32.to_le_bytes());
        let got = docx_text(&docx, 1024);
        assert!(got.is_err(), "{got:?}");
    }

    #[test]
    fn the_docx_bound_covers_all_parts_together() {
        let part = body(&"<w:p><w:r><w:t>x</w:t></w:r></w:p>".repeat(20));
        let docx = docx_with(&[("word/document.xml", &part), ("word/header1.xml", &part)]);
        assert!(docx_text(&docx, part.len() * 2).is_ok());
        assert_eq!(
            docx_text(&docx, part.len() * 2 - 1),
            Err(DocumentError::TooLarge {
                limit: part.len() * 2 - 1
            })
        );
    }

    #[test]
    fn legacy_office_formats_are_unsupported() {
        for format in [
            DocumentFormat::Doc,
            DocumentFormat::Xls,
            DocumentFormat::Xlsx,
        ] {
            assert_eq!(
                extract_text(format, b"anything"),
                Err(DocumentError::Unsupported(format))
            );
        }
        assert_eq!(
            DocumentError::Unsupported(DocumentFormat::Doc).to_string(),
            "`doc` documents cannot be scanned"
        );
    }

    #[test]
    fn debug_output_hides_the_text() {
        let got = extract_text(DocumentFormat::Txt, b"123-45-6789").unwrap();
        let debug = format!("{got:?}");
        assert!(!debug.contains("123"), "{debug}");
    }
}
