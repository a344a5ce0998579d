//! The one list envelope, `{"items":[…],"total":N,"limit":N,"offset":N}`, and its
//! `limit`/`offset` parameters.

use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit` accepted.
pub const MAX_LIMIT: i64 = 500;

/// A page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListEnvelope<T> {
    pub items: Vec<T>,
    /// Rows matching the filters, across all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Validated `limit` and `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    pub limit: i64,
    pub offset: i64,
}

impl PageParams {
    /// Applies the defaults and bounds: `limit` 1–500 (default 50), `offset` ≥ 0.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation(
                "/limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::validation(
                "/offset",
                "offset must not be negative",
            ));
        }
        Ok(Self { limit, offset })
    }

    /// The envelope of a page the store already cut.
    pub fn envelope<T>(self, items: Vec<T>, total: i64) -> ListEnvelope<T> {
        ListEnvelope {
            items,
            total,
            limit: self.limit,
            offset: self.offset,
        }
    }

    /// Cuts a page out of a complete, small list held in memory.
    pub fn slice<T>(self, all: Vec<T>) -> ListEnvelope<T> {
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(self.limit).unwrap_or(0);
        let items = all.into_iter().skip(skip).take(take).collect();
        self.envelope(items, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_defaults() {
        let p = PageParams::new(None, None).expect("defaults");
        assert_eq!((p.limit, p.offset), (50, 0));
        assert_eq!(
            PageParams::new(Some(501), None)
                .expect_err("max")
                .field
                .as_deref(),
            Some("/limit")
        );
        assert!(PageParams::new(Some(0), None).is_err());
        assert_eq!(
            PageParams::new(None, Some(-1))
                .expect_err("neg")
                .field
                .as_deref(),
            Some("/offset")
        );
        let page = PageParams::new(Some(2), Some(1))
            .expect("ok")
            .slice(vec![1, 2, 3, 4]);
        assert_eq!(page.items, vec![2, 3]);
        assert_eq!(page.total, 4);
    }
}
