//! Text analysis: one text, two token streams.
//!
//! - `dailyfeed_latin`: words of letters and digits outside the CJK blocks, lower-cased and
//!   stemmed (English Snowball), so "posts" finds "post" and "Kafka를" yields `kafka`.
//! - `dailyfeed_cjk`: each run of Hangul (and other CJK) characters as overlapping bigrams
//!   with positions, so "중복" finds "중복을" (the particle only adds the bigram "복을") and a
//!   query of several bigrams becomes a phrase ("카프리" = 카프+프리 never matches "카프카").
//!   A run of one character is kept as a unigram. Runs are separated by a position gap so a
//!   phrase cannot bridge two words.
//!
//! Lindera's Korean dictionary (a morphological analyser) cannot be built offline, and
//! bigrams need no dictionary: recall is high, precision is restored by phrase matching.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
    TokenizerManager,
};

pub const LATIN: &str = "dailyfeed_latin";
pub const CJK: &str = "dailyfeed_cjk";

/// Registers both analyzers under their names.
pub fn register(manager: &TokenizerManager) {
    manager.register(LATIN, latin());
    manager.register(CJK, cjk());
}

pub fn latin() -> TextAnalyzer {
    TextAnalyzer::builder(LatinTokenizer)
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

pub fn cjk() -> TextAnalyzer {
    TextAnalyzer::builder(CjkBigramTokenizer)
        .filter(LowerCaser)
        .build()
}

/// Hangul syllables and jamo, CJK ideographs, kana: the scripts written without spaces
/// between (all) words, indexed as bigrams.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}'   // Hangul Jamo
        | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3130}'..='\u{318F}' // Hangul Compatibility Jamo
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{A960}'..='\u{A97F}' // Hangul Jamo Extended-A
        | '\u{AC00}'..='\u{D7A3}' // Hangul Syllables
        | '\u{D7B0}'..='\u{D7FF}' // Hangul Jamo Extended-B
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
    )
}

fn is_latin_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Splits on everything that is not a letter or digit, and on CJK characters.
#[derive(Clone, Copy, Default)]
pub struct LatinTokenizer;

pub struct LatinStream<'a> {
    text: &'a str,
    cursor: usize,
    token: Token,
}

impl Tokenizer for LatinTokenizer {
    type TokenStream<'a> = LatinStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LatinStream<'a> {
        LatinStream {
            text,
            cursor: 0,
            token: Token {
                position: usize::MAX,
                ..Token::default()
            },
        }
    }
}

impl TokenStream for LatinStream<'_> {
    fn advance(&mut self) -> bool {
        let rest = &self.text[self.cursor..];
        let Some(start) = rest.find(is_latin_word_char) else {
            self.cursor = self.text.len();
            return false;
        };
        let word = &rest[start..];
        let len = word.find(|c| !is_latin_word_char(c)).unwrap_or(word.len());
        let from = self.cursor + start;
        self.cursor = from + len;
        self.token.offset_from = from;
        self.token.offset_to = from + len;
        self.token.position = self.token.position.wrapping_add(1);
        self.token.position_length = 1;
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..from + len]);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// Overlapping bigrams over each CJK run (a run of one character: a unigram).
#[derive(Clone, Copy, Default)]
pub struct CjkBigramTokenizer;

pub struct CjkStream<'a> {
    text: &'a str,
    /// Byte offset of the next bigram's first character.
    cursor: usize,
    /// Whether the previous token ended a run (the next one opens a new run: gap).
    in_run: bool,
    next_position: usize,
    token: Token,
}

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = CjkStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CjkStream<'a> {
        CjkStream {
            text,
            cursor: 0,
            in_run: false,
            next_position: 0,
            token: Token::default(),
        }
    }
}

impl CjkStream<'_> {
    fn emit(&mut self, from: usize, to: usize) {
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.next_position;
        self.token.position_length = 1;
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
        self.next_position += 1;
    }
}

impl TokenStream for CjkStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            let rest = &self.text[self.cursor..];
            let mut chars = rest.char_indices();
            let Some((_, first)) = chars.next() else {
                return false;
            };
            if !is_cjk(first) {
                if self.in_run {
                    // A word boundary: leave a hole so phrases do not span it.
                    self.next_position += 1;
                    self.in_run = false;
                }
                self.cursor += first.len_utf8();
                continue;
            }
            let from = self.cursor;
            let second = chars.next();
            match second {
                Some((at, c)) if is_cjk(c) => {
                    self.emit(from, from + at + c.len_utf8());
                    self.cursor = from + at;
                    self.in_run = true;
                    return true;
                }
                _ => {
                    self.cursor = from + first.len_utf8();
                    if self.in_run {
                        // The last character of a run is already in the previous bigram.
                        continue;
                    }
                    self.emit(from, self.cursor);
                    self.in_run = true;
                    return true;
                }
            }
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// The tokens `analyzer` makes of `text`, with positions.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    stream.process(&mut |t| out.push((t.position, t.text.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        tokens(analyzer, text).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn hangul_runs_become_bigrams_with_gaps() {
        let mut a = cjk();
        assert_eq!(
            tokens(&mut a, "중복을 제거"),
            vec![
                (0, "중복".to_owned()),
                (1, "복을".to_owned()),
                (3, "제거".to_owned())
            ]
        );
        assert_eq!(texts(&mut a, "책"), vec!["책"]);
        assert_eq!(texts(&mut a, "Kafka를 써요"), vec!["를", "써요"]);
        assert!(texts(&mut a, "only latin 123").is_empty());
    }

    #[test]
    fn latin_words_are_stemmed_and_skip_hangul() {
        let mut a = latin();
        assert_eq!(
            texts(&mut a, "Kafka를 Posts, running e-mail"),
            vec!["kafka", "post", "run", "e", "mail"]
        );
        assert!(texts(&mut a, "한국어만").is_empty());
    }

    #[test]
    fn offsets_point_into_the_text() {
        let text = "a 카프카 b";
        let mut a = cjk();
        let mut stream = a.token_stream(text);
        let mut seen = Vec::new();
        stream.process(&mut |t| seen.push(text[t.offset_from..t.offset_to].to_owned()));
        assert_eq!(seen, vec!["카프", "프카"]);
    }
}
