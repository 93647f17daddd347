//! User query → tantivy query, leniently: no query syntax is exposed, so no input can be a
//! syntax error.
//!
//! - The query is split into words on whitespace; `"…"` groups words into a phrase (an
//!   unclosed quote runs to the end).
//! - Every word (or phrase) must match (AND). A word matches when its Latin tokens match in
//!   `text_latin` and its CJK bigrams match in `text_cjk`, each as a phrase when there are
//!   several (so "e-mail" is `e` followed by `mail`, and "카프카" is 카프 followed by 프카).
//! - Characters that are neither letters nor digits (quotes, colons, `*`, `-`…) make no
//!   tokens; a query left with no tokens at all is refused by the caller.

use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

use crate::analysis;
use crate::index::Fields;

/// The words and phrases of a query, as the user grouped them.
pub fn split(q: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = q;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            parts.push(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            parts.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    parts
}

/// Builds queries with the index's own analyzers.
pub struct QueryBuilder {
    latin: TextAnalyzer,
    cjk: TextAnalyzer,
    fields: Fields,
}

impl QueryBuilder {
    pub fn new(fields: Fields) -> Self {
        Self {
            latin: analysis::latin(),
            cjk: analysis::cjk(),
            fields,
        }
    }

    /// The query for `q`, or `None` if it has nothing to search for.
    pub fn build(&mut self, q: &str) -> Option<Box<dyn Query>> {
        let mut words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for part in split(q) {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            let latin = analysis::tokens(&mut self.latin, part);
            if let Some(q) = sequence(self.fields.text_latin, &latin) {
                clauses.push((Occur::Must, q));
            }
            let cjk = analysis::tokens(&mut self.cjk, part);
            if let Some(q) = sequence(self.fields.text_cjk, &cjk) {
                clauses.push((Occur::Must, q));
            }
            match clauses.len() {
                0 => {}
                1 => words.extend(clauses),
                _ => words.push((Occur::Must, Box::new(BooleanQuery::new(clauses)))),
            }
        }
        match words.len() {
            0 => None,
            1 => words.pop().map(|(_, q)| q),
            _ => Some(Box::new(BooleanQuery::new(words))),
        }
    }
}

/// One token: a term query; several: a phrase keeping their relative positions.
fn sequence(field: Field, tokens: &[(usize, String)]) -> Option<Box<dyn Query>> {
    match tokens {
        [] => None,
        [(_, text)] => Some(Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::WithFreqs,
        ))),
        [(first, _), ..] => Some(Box::new(PhraseQuery::new_with_offset(
            tokens
                .iter()
                .map(|(pos, text)| (pos - first, Term::from_field_text(field, text)))
                .collect(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_quoted_phrases_leniently() {
        assert_eq!(split("  kafka  스트림 "), vec!["kafka", "스트림"]);
        assert_eq!(split(r#"a "b c" d"#), vec!["a", "b c", "d"]);
        assert_eq!(
            split(r#"open "quote never closed"#),
            vec!["open", "quote never closed"]
        );
        assert_eq!(split(r#""""#), vec![""]);
        assert_eq!(split("title:x*"), vec!["title:x*"]);
    }
}
