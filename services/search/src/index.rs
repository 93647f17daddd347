//! The embedded index: one tantivy index per *generation* directory under
//! `SEARCH_INDEX_DIR`, the live one named by the `CURRENT` file.
//!
//! - One document per post, keyed by `post_id`. A write replaces the post's document only if
//!   it is newer (`version`); a delete leaves a *tombstone* (no text, `deleted = 1`) that no
//!   later or replayed event can bring back — events for one post can arrive out of order
//!   when a replay reads two days' topics side by side.
//! - Writes go to an in-memory writer and become visible and durable at [`commit`]: the
//!   consumer's checkpoint. Until then an *overlay* remembers what each post was last set to,
//!   so the version check sees uncommitted writes too.
//! - A rebuild fills a second generation while events are written to both; when it is done
//!   `CURRENT` is replaced by a rename (atomic) and searches move to the new generation.
//!
//! [`commit`]: SearchIndex::commit

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use chrono::Utc;
use tantivy::directory::MmapDirectory;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use crate::analysis;

const CURRENT: &str = "CURRENT";
const GENERATION_PREFIX: &str = "gen-";

pub use contracts::posts::PostSnapshot as PostDoc;

/// One change to the index.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(PostDoc),
    Delete { post_id: i64 },
}

impl Change {
    fn post_id(&self) -> i64 {
        match self {
            Change::Upsert(doc) => doc.post_id,
            Change::Delete { post_id } => *post_id,
        }
    }
}

/// What the index holds for a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub version: i64,
    pub deleted: bool,
}

/// Whether `change` should replace what the index holds.
fn supersedes(change: &Change, known: Option<Known>) -> bool {
    match (known, change) {
        (None, _) => true,
        (Some(k), _) if k.deleted => false,
        (Some(_), Change::Delete { .. }) => true,
        (Some(k), Change::Upsert(doc)) => i64::from(doc.version) > k.version,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub post_id: Field,
    pub author_id: Field,
    pub version: Field,
    pub deleted: Field,
    pub created_at: Field,
    pub updated_at: Field,
    pub title: Field,
    pub body: Field,
    pub text_latin: Field,
    pub text_cjk: Field,
}

pub const CREATED_AT: &str = "created_at";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        post_id: b.add_i64_field("post_id", INDEXED | FAST | STORED),
        author_id: b.add_i64_field("author_id", STORED),
        version: b.add_i64_field("version", FAST),
        deleted: b.add_u64_field("deleted", FAST),
        created_at: b.add_i64_field(CREATED_AT, FAST | STORED),
        updated_at: b.add_i64_field("updated_at", STORED),
        title: b.add_text_field("title", STORED),
        body: b.add_text_field("body", STORED),
        text_latin: b.add_text_field("text_latin", text(analysis::LATIN)),
        text_cjk: b.add_text_field("text_cjk", text(analysis::CJK)),
    };
    (b.build(), fields)
}

/// The text both analyzers index: title and body.
pub fn indexed_text(title: Option<&str>, body: &str) -> String {
    match title {
        Some(t) if !t.is_empty() => format!("{t}\n{body}"),
        _ => body.to_owned(),
    }
}

struct Writer {
    writer: IndexWriter<TantivyDocument>,
    /// What uncommitted changes set each post to.
    overlay: HashMap<i64, Known>,
    uncommitted: usize,
}

/// One index directory with its writer and reader.
pub struct Generation {
    pub name: String,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    writer: Mutex<Writer>,
    pub fields: Fields,
}

impl Generation {
    fn open(dir: &Path, writer_memory: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(MmapDirectory::open(dir)?, schema)
            .with_context(|| format!("open index {}", dir.display()))?;
        analysis::register(index.tokenizers());
        let writer = index
            .writer(writer_memory)
            .context("open index writer (is another search process using this directory?)")?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Self {
            name,
            dir: dir.to_owned(),
            index,
            reader,
            writer: Mutex::new(Writer {
                writer,
                overlay: HashMap::new(),
                uncommitted: 0,
            }),
            fields,
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// What the committed index holds for `post_id`.
    fn committed(&self, post_id: i64) -> anyhow::Result<Option<Known>> {
        let term = Term::from_field_i64(self.fields.post_id, post_id);
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            let Some(mut postings) = segment
                .inverted_index(self.fields.post_id)?
                .read_postings(&term, IndexRecordOption::Basic)?
            else {
                continue;
            };
            let mut doc: DocId = tantivy::DocSet::doc(&postings);
            while doc != tantivy::TERMINATED {
                if !segment.is_deleted(doc) {
                    let fast = segment.fast_fields();
                    let version = fast.i64("version")?.first(doc).unwrap_or(0);
                    let deleted = fast.u64("deleted")?.first(doc).unwrap_or(0) == 1;
                    return Ok(Some(Known { version, deleted }));
                }
                doc = tantivy::DocSet::advance(&mut postings);
            }
        }
        Ok(None)
    }

    /// Applies `change` if it supersedes what the index holds; true if it did.
    pub fn apply(&self, change: &Change) -> anyhow::Result<bool> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| anyhow::anyhow!("index writer lock poisoned"))?;
        let post_id = change.post_id();
        let known = match w.overlay.get(&post_id) {
            Some(k) => Some(*k),
            None => self.committed(post_id)?,
        };
        if !supersedes(change, known) {
            return Ok(false);
        }
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_i64(f.post_id, post_id);
        let now = match change {
            Change::Upsert(post) => {
                doc.add_i64(f.author_id, post.author_id);
                doc.add_i64(f.version, i64::from(post.version));
                doc.add_u64(f.deleted, 0);
                doc.add_i64(f.created_at, post.created_at.timestamp_millis());
                doc.add_i64(f.updated_at, post.updated_at.timestamp_millis());
                if let Some(title) = &post.title {
                    doc.add_text(f.title, title);
                }
                doc.add_text(f.body, &post.body);
                let text = indexed_text(post.title.as_deref(), &post.body);
                doc.add_text(f.text_latin, &text);
                doc.add_text(f.text_cjk, &text);
                Known {
                    version: i64::from(post.version),
                    deleted: false,
                }
            }
            Change::Delete { .. } => {
                let version = known.map_or(0, |k| k.version);
                doc.add_i64(f.version, version);
                doc.add_u64(f.deleted, 1);
                doc.add_i64(f.created_at, 0);
                Known {
                    version,
                    deleted: true,
                }
            }
        };
        w.writer
            .delete_term(Term::from_field_i64(f.post_id, post_id));
        w.writer.add_document(doc)?;
        w.overlay.insert(post_id, now);
        w.uncommitted += 1;
        Ok(true)
    }

    /// Makes applied changes durable and visible to new searches.
    pub fn commit(&self) -> anyhow::Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| anyhow::anyhow!("index writer lock poisoned"))?;
        if w.uncommitted == 0 {
            return Ok(());
        }
        w.writer.commit()?;
        self.reader.reload()?;
        w.overlay.clear();
        w.uncommitted = 0;
        Ok(())
    }

    /// Live (non-deleted) posts in the committed index.
    pub fn live_posts(&self) -> u64 {
        let searcher = self.reader.searcher();
        let tombstones = searcher
            .search(
                &tantivy::query::TermQuery::new(
                    Term::from_field_u64(self.fields.deleted, 1),
                    IndexRecordOption::Basic,
                ),
                &tantivy::collector::Count,
            )
            .unwrap_or(0) as u64;
        searcher.num_docs().saturating_sub(tombstones)
    }
}

struct Generations {
    live: Arc<Generation>,
    building: Option<Arc<Generation>>,
}

/// The live generation, and the one a rebuild is filling.
pub struct SearchIndex {
    root: PathBuf,
    writer_memory: usize,
    state: RwLock<Generations>,
}

impl SearchIndex {
    /// Opens the generation `CURRENT` names (creating the first one) and removes directories
    /// left by a rebuild that did not finish.
    pub fn open(root: &Path, writer_memory: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
        let current = match std::fs::read_to_string(root.join(CURRENT)) {
            Ok(name) => name.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let name = new_generation_name();
                write_current(root, &name)?;
                name
            }
            Err(err) => return Err(err).context("read CURRENT"),
        };
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(GENERATION_PREFIX) && name != current {
                tracing::info!(generation = %name, "removing an unfinished index rebuild");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        let live = Generation::open(&root.join(&current), writer_memory)?;
        Ok(Self {
            root: root.to_owned(),
            writer_memory,
            state: RwLock::new(Generations {
                live: Arc::new(live),
                building: None,
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Generations> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Generations> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn live(&self) -> Arc<Generation> {
        Arc::clone(&self.read().live)
    }

    pub fn rebuilding(&self) -> bool {
        self.read().building.is_some()
    }

    /// Applies a change to the live generation and to one being built.
    pub fn apply(&self, change: &Change) -> anyhow::Result<()> {
        let state = self.read();
        state.live.apply(change)?;
        if let Some(building) = &state.building {
            building.apply(change)?;
        }
        Ok(())
    }

    /// Commits both generations (blocking I/O: call off the async executor).
    pub fn commit(&self) -> anyhow::Result<()> {
        let (live, building) = {
            let state = self.read();
            (Arc::clone(&state.live), state.building.clone())
        };
        live.commit()?;
        if let Some(building) = building {
            building.commit()?;
        }
        Ok(())
    }

    /// Starts a rebuild: a fresh generation that every change from now on also goes to.
    pub fn begin_rebuild(&self) -> anyhow::Result<Option<Arc<Generation>>> {
        let mut state = self.write();
        if state.building.is_some() {
            return Ok(None);
        }
        let generation = Arc::new(Generation::open(
            &self.root.join(new_generation_name()),
            self.writer_memory,
        )?);
        state.building = Some(Arc::clone(&generation));
        Ok(Some(generation))
    }

    /// Commits the rebuilt generation, makes it the live one (an atomic rename of
    /// `CURRENT`) and removes the old one.
    pub fn finish_rebuild(&self, generation: &Arc<Generation>) -> anyhow::Result<()> {
        let old = {
            let mut state = self.write();
            generation.commit()?;
            write_current(&self.root, &generation.name)?;
            state.building = None;
            std::mem::replace(&mut state.live, Arc::clone(generation))
        };
        let dir = old.dir.clone();
        drop(old);
        // Searches still holding the old searcher keep reading their mapped files.
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(error = %err, dir = %dir.display(), "cannot remove the old index");
        }
        Ok(())
    }

    /// Gives up a rebuild (its directory is removed).
    pub fn abort_rebuild(&self, generation: &Arc<Generation>) {
        let mut state = self.write();
        if state
            .building
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(b, generation))
        {
            state.building = None;
        }
        drop(state);
        if let Err(err) = std::fs::remove_dir_all(&generation.dir) {
            tracing::warn!(error = %err, "cannot remove an aborted rebuild");
        }
    }
}

fn new_generation_name() -> String {
    format!(
        "{GENERATION_PREFIX}{}",
        Utc::now().format("%Y%m%dT%H%M%S%.6f")
    )
}

/// Replaces `CURRENT` atomically: write a temporary file, sync it, rename it over.
fn write_current(root: &Path, name: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = root.join(format!("{CURRENT}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(name.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, root.join(CURRENT))?;
    std::fs::File::open(root)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: i64, version: i32, body: &str) -> Change {
        Change::Upsert(PostDoc {
            post_id: id,
            author_id: 7,
            title: None,
            body: body.to_owned(),
            image_ids: Vec::new(),
            version,
            like_count: 0,
            comment_count: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        })
    }

    #[test]
    fn newer_versions_win_and_tombstones_absorb() {
        let known = |version, deleted| Some(Known { version, deleted });
        assert!(supersedes(&post(1, 1, ""), None));
        assert!(supersedes(&post(1, 2, ""), known(1, false)));
        assert!(!supersedes(&post(1, 1, ""), known(1, false)));
        assert!(!supersedes(&post(1, 1, ""), known(2, false)));
        assert!(supersedes(&Change::Delete { post_id: 1 }, known(9, false)));
        assert!(!supersedes(&post(1, 10, ""), known(1, true)));
        assert!(!supersedes(&Change::Delete { post_id: 1 }, known(1, true)));
    }

    #[test]
    fn a_generation_sees_its_uncommitted_and_committed_writes() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("search-gen-{}", uuid::Uuid::new_v4()));
        let index = SearchIndex::open(&dir, 30_000_000)?;
        index.apply(&post(1, 2, "hello"))?;
        index.apply(&post(1, 1, "older"))?; // ignored: older than the uncommitted version
        index.commit()?;
        let live = index.live();
        assert_eq!(
            live.committed(1)?,
            Some(Known {
                version: 2,
                deleted: false
            })
        );
        index.apply(&Change::Delete { post_id: 1 })?;
        index.apply(&post(1, 3, "back?"))?;
        index.commit()?;
        assert_eq!(live.committed(1)?.map(|k| k.deleted), Some(true));
        assert_eq!(live.live_posts(), 0);
        drop(index);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
