//! Running a query: BM25 with a recency boost, snippets, and point-in-time paging.
//!
//! **Ranking.** `score = bm25 × (1 + w × 0.5^(age / h))`, where `age` is the post's age at
//! the search's `as_of` time, `h` is `SEARCH_RECENCY_HALF_LIFE_HOURS` (default 72) and `w`
//! is `SEARCH_RECENCY_WEIGHT` (default 1.0): a brand-new post scores up to (1 + w)× its
//! text relevance, one `h` old (1 + w/2)×, an old one ≈ 1× — relevance still decides
//! between posts of similar age, recency breaks near-ties.
//!
//! **Paging.** The first page pins a *point in time*: the searcher it used (an immutable
//! snapshot of the index) and `as_of`. The cursor names both, plus the offset; later pages
//! re-run the query on that very snapshot, so new, edited or deleted posts cannot shift
//! results between pages (no duplicates, no gaps). Snapshots are kept for
//! `SEARCH_CURSOR_TTL_SECONDS` after last use; an expired cursor falls back to the current
//! index restricted to posts created up to `as_of`.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::Value;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Score, Searcher, SegmentReader, TantivyDocument, Term};

use crate::index::{CREATED_AT, Fields};

#[derive(Debug, Clone, Copy)]
pub struct Ranking {
    pub half_life_hours: f64,
    pub weight: f64,
}

/// Where a result list continues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Position {
    /// Snapshot id (`generation name` + searcher generation).
    #[serde(rename = "s")]
    pub snapshot: String,
    /// The `as_of` time, epoch milliseconds.
    #[serde(rename = "t")]
    pub as_of: i64,
    #[serde(rename = "o")]
    pub offset: usize,
}

/// One result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hit {
    pub post_id: i64,
    pub author_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Up to ~160 characters around the best match, HTML-escaped, matches in `<b>…</b>`.
    pub snippet: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub score: f32,
}

/// Recently used snapshots, by id.
pub struct Snapshots {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Searcher, Instant)>>,
}

impl Snapshots {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn id(generation: &str, searcher: &Searcher) -> String {
        format!("{generation}/{}", searcher.generation().generation_id())
    }

    /// Remembers `searcher` under `id` (refreshing its last use).
    pub fn keep(&self, id: &str, searcher: &Searcher) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        entries.retain(|_, (_, used)| now.duration_since(*used) < self.ttl);
        if entries.len() >= self.capacity
            && !entries.contains_key(id)
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        entries.insert(id.to_owned(), (searcher.clone(), now));
    }

    pub fn get(&self, id: &str) -> Option<Searcher> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(id)?;
        if entry.1.elapsed() >= self.ttl {
            entries.remove(id);
            return None;
        }
        entry.1 = Instant::now();
        Some(entry.0.clone())
    }
}

/// Runs `query` on `searcher`: `limit + 1` hits from `offset` (the extra one says whether
/// there is a next page), posts created after `as_of` excluded.
pub fn run(
    searcher: &Searcher,
    fields: &Fields,
    query: Box<dyn Query>,
    as_of: DateTime<Utc>,
    offset: usize,
    limit: usize,
    ranking: Ranking,
) -> tantivy::Result<Vec<Hit>> {
    let as_of_ms = as_of.timestamp_millis();
    let until = RangeQuery::new(
        Bound::Unbounded,
        Bound::Included(Term::from_field_i64(fields.created_at, as_of_ms)),
    );
    let filtered = BooleanQuery::new(vec![
        (Occur::Must, query.box_clone()),
        (Occur::Must, Box::new(until)),
    ]);
    let half_life_ms = (ranking.half_life_hours * 3_600_000.0).max(1.0);
    let weight = ranking.weight;
    let collector = TopDocs::with_limit(limit + 1)
        .and_offset(offset)
        .tweak_score(move |segment: &SegmentReader| {
            let created = segment
                .fast_fields()
                .i64(CREATED_AT)
                .ok()
                .map(|c| c.first_or_default_col(0));
            move |doc, bm25: Score| {
                let created_ms = created.as_ref().map_or(0, |c| c.get_val(doc));
                let age = (as_of_ms - created_ms).max(0) as f64;
                let boost = 1.0 + weight * 0.5f64.powf(age / half_life_ms);
                (f64::from(bm25) * boost) as f32
            }
        });
    let top: Vec<(f32, DocAddress)> = searcher.search(&filtered, &collector)?;
    let mut latin = SnippetGenerator::create(searcher, &*query, fields.text_latin)?;
    let mut cjk = SnippetGenerator::create(searcher, &*query, fields.text_cjk)?;
    latin.set_max_num_chars(160);
    cjk.set_max_num_chars(160);
    let mut hits = Vec::with_capacity(top.len());
    for (score, address) in top {
        let doc: TantivyDocument = searcher.doc(address)?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let int = |field| doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0);
        let title = text(fields.title);
        let body = text(fields.body).unwrap_or_default();
        let full = crate::index::indexed_text(title.as_deref(), &body);
        let a = latin.snippet(&full);
        let b = cjk.snippet(&full);
        let best = if b.highlighted().len() > a.highlighted().len() {
            b
        } else {
            a
        };
        let snippet = if best.is_empty() {
            html_escape(&full.chars().take(160).collect::<String>())
        } else {
            best.to_html()
        };
        hits.push(Hit {
            post_id: int(fields.post_id),
            author_id: int(fields.author_id),
            title,
            snippet,
            created_at: millis(int(fields.created_at)),
            updated_at: millis(int(fields.updated_at)),
            score,
        });
    }
    Ok(hits)
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::Duration as Age;

    use super::*;
    use crate::index::{Change, PostDoc, SearchIndex};
    use crate::query::QueryBuilder;

    fn post(id: i64, body: &str, age_hours: i64) -> Change {
        let at = Utc::now() - Age::hours(age_hours);
        Change::Upsert(PostDoc {
            post_id: id,
            author_id: 1,
            title: None,
            body: body.to_owned(),
            image_ids: Vec::new(),
            version: 1,
            like_count: 0,
            comment_count: 0,
            created_at: at,
            updated_at: at,
        })
    }

    fn ranked(index: &SearchIndex, q: &str, weight: f64) -> anyhow::Result<Vec<i64>> {
        let live = index.live();
        let query = QueryBuilder::new(live.fields)
            .build(q)
            .ok_or_else(|| anyhow::anyhow!("no query"))?;
        let ranking = Ranking {
            half_life_hours: 72.0,
            weight,
        };
        let hits = run(
            &live.searcher(),
            &live.fields,
            query,
            Utc::now(),
            0,
            10,
            ranking,
        )?;
        Ok(hits.iter().map(|h| h.post_id).collect())
    }

    #[test]
    fn recency_breaks_ties_and_relevance_still_counts() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("search-rank-{}", uuid::Uuid::new_v4()));
        let index = SearchIndex::open(&dir, 30_000_000)?;
        // Same text, different ages: the newer first.
        index.apply(&post(1, "kafka streams intro and more words here", 24 * 30))?;
        index.apply(&post(2, "kafka streams intro and more words here", 1))?;
        // Far more relevant (short, repeated term) but a year old.
        index.apply(&post(3, "kafka kafka kafka", 24 * 365))?;
        index.commit()?;
        let with_recency = ranked(&index, "kafka", 1.0)?;
        assert!(
            with_recency.iter().position(|&id| id == 2)
                < with_recency.iter().position(|&id| id == 1),
            "{with_recency:?}"
        );
        // Plain BM25 (w = 0): the equal texts tie, the dense old one wins.
        assert_eq!(ranked(&index, "kafka", 0.0)?.first(), Some(&3));
        // Posts created after `as_of` are not there.
        let live = index.live();
        let query = QueryBuilder::new(live.fields)
            .build("kafka")
            .ok_or_else(|| anyhow::anyhow!("no query"))?;
        let old_as_of = Utc::now() - Age::hours(24 * 100);
        let hits = run(
            &live.searcher(),
            &live.fields,
            query,
            old_as_of,
            0,
            10,
            Ranking {
                half_life_hours: 72.0,
                weight: 1.0,
            },
        )?;
        assert_eq!(hits.iter().map(|h| h.post_id).collect::<Vec<_>>(), vec![3]);
        drop(index);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
