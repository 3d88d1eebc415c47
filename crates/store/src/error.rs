//! `StoreError`: what a caller (the admin API) must tell apart. A unique violation is a 409, a
//! reference to a missing parent a 400/422, a missing row a 404, and anything else a 500 whose
//! cause is logged, not shown. Constraint violations are recognised by their codes on each
//! backend, never by message text: SQLSTATE `23505` / `23503` on PostgreSQL, extended result
//! codes 2067 / 1555 / 787 on SQLite.

/// An error from a [`Store`](crate::Store) operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with this id (or public id).
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// A unique constraint was violated (a duplicate name or key id), or the row is still
    /// referenced and cannot be deleted, or its state forbids the change (a revoked key).
    #[error("{entity}: {reason}")]
    Conflict {
        entity: &'static str,
        reason: &'static str,
    },
    /// The row refers to a parent that does not exist (a team in a missing organization).
    #[error("{entity} refers to a missing parent")]
    InvalidReference { entity: &'static str },
    /// A value in the database could not be read back (such as malformed JSON in a labels
    /// column), or an argument is out of range.
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The database failed: connection, I/O, a query error.
    #[error("store backend error: {0}")]
    Backend(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// What a statement was doing, which decides what a foreign-key violation means: on a write
/// the row names a missing parent; on a delete the row still has children.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Write,
    Delete,
}

const PG_UNIQUE: &str = "23505";
const PG_FOREIGN_KEY: &str = "23503";
const SQLITE_CONSTRAINT_UNIQUE: &str = "2067";
const SQLITE_CONSTRAINT_PRIMARYKEY: &str = "1555";
const SQLITE_CONSTRAINT_FOREIGNKEY: &str = "787";

impl StoreError {
    /// Classifies a database error from an operation on `entity`.
    pub(crate) fn from_sqlx(err: sqlx::Error, entity: &'static str, op: Op) -> Self {
        let code = match &err {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            sqlx::Error::RowNotFound => return Self::NotFound { entity },
            _ => None,
        };
        match (code.as_deref(), op) {
            (Some(PG_UNIQUE | SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY), _) => {
                Self::Conflict {
                    entity,
                    reason: "already exists",
                }
            }
            (Some(PG_FOREIGN_KEY | SQLITE_CONSTRAINT_FOREIGNKEY), Op::Write) => {
                Self::InvalidReference { entity }
            }
            (Some(PG_FOREIGN_KEY | SQLITE_CONSTRAINT_FOREIGNKEY), Op::Delete) => Self::Conflict {
                entity,
                reason: "still has dependent rows",
            },
            _ => Self::Backend(err),
        }
    }
}
