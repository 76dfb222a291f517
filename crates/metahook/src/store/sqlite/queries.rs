//! Read-only queries behind the admin API: filtered, cursor-paginated lists as JSON.

use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::{SqliteStore, lock};
use crate::store::listing::{Listing, listing, page_sql};
use crate::store::{ListQuery, Page, StoreError};

impl SqliteStore {
    pub(crate) fn list(&self, resource: &str, query: &ListQuery) -> Result<Page, StoreError> {
        let listing = listing(resource).ok_or_else(|| StoreError::Unknown(resource.to_owned()))?;
        let (sql, values) = page_sql(listing, query, |n| format!("?{n}"));
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&query.after];
        params.extend(values.iter().map(|v| *v as &dyn rusqlite::ToSql));
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.query(params.as_slice())?;
        let mut items = Vec::new();
        let mut last = None;
        while let Some(row) = rows.next()? {
            if items.len() == query.limit {
                return Ok(Page { items, next_cursor: last });
            }
            let mut item = Map::new();
            for (i, name) in names.iter().enumerate() {
                if name == "cursor" {
                    last = Some(row.get::<_, i64>(i)?);
                    continue;
                }
                item.insert(name.clone(), to_json(listing, name, row.get_ref(i)?));
            }
            (listing.finish)(&mut item);
            items.push(Value::Object(item));
        }
        Ok(Page { items, next_cursor: None })
    }
}

fn to_json(listing: &Listing, name: &str, value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if listing.flags.contains(&name) => Value::Bool(i != 0),
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let text = String::from_utf8_lossy(t);
            if listing.json.contains(&name) {
                serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()))
            } else {
                Value::String(text.into_owned())
            }
        }
    }
}
